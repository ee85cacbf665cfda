"""Health: readiness is every part's problems together; /status and the ready gauge follow."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from ingester import __version__
from ingester.observe.health import Health
from ingester.observe.metrics import Metrics


def test_readiness_status_and_gauges_gather_every_part() -> None:
    metrics = Metrics(CollectorRegistry())
    kafka: list[str] = ["Kafka producer not connected: starting"]
    refreshed: list[str] = []
    buffered = [3]
    health = Health(
        metrics,
        "pod-1",
        liveness=lambda: ["component ticker is not running"],
        checks=[lambda: kafka, lambda: [], lambda: ["config topic not replayed yet"]],
        gauges=[lambda: refreshed.append("a"), lambda: refreshed.append("b")],
        sections={"owned_partitions": lambda: [0, 1], "buffered_records": lambda: buffered[0]},
    )
    problems = ["Kafka producer not connected: starting", "config topic not replayed yet"]
    assert health.readiness() == problems
    assert health.liveness() == ["component ticker is not running"]
    health.refresh()
    assert refreshed == ["a", "b"]
    assert metrics.registry.get_sample_value("sportrix_ingester_ready") == 0
    status = health.status()
    assert list(status) == [
        "instance_id",
        "version",
        "ready",
        "problems",
        "owned_partitions",
        "buffered_records",
    ]
    assert status["instance_id"] == "pod-1"
    assert status["version"] == __version__
    assert (status["ready"], status["problems"]) == (False, problems)
    kafka.clear()
    buffered[0] = 0
    health.refresh()
    assert metrics.registry.get_sample_value("sportrix_ingester_ready") == 0  # config still
    assert health.status()["buffered_records"] == 0  # read when asked
