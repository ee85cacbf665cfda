"""The paragraph ``sportrix-ingester demo`` prints when it is stopped (Ctrl-C)."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import generate_latest

from ingester.observe.metrics import Metrics
from ingester.tools.tail import TailStats
from sportrix_devkit.demo import summary

LOGS = [Path("/w/ingester.log"), Path("/w/simulator.log"), Path("/w/kafka/broker.log")]


def metrics_text(produced: dict[str, int], dead: dict[str, int]) -> str:
    """A real ``/metrics`` page of the daemon with these counters."""
    metrics = Metrics()
    for sport, count in produced.items():
        metrics.records_produced.labels(sport=sport).inc(count)
    for stage, count in dead.items():
        metrics.dlq_records.labels(stage=stage).inc(count)
    return generate_latest(metrics.registry).decode()


def test_counts_lag_percentiles_and_logs() -> None:
    stats = TailStats(records=1200, lags_ms=[float(n) for n in range(1, 101)])
    text = summary(
        stats, metrics_text({"soccer": 1000, "cricket": 210}, {"decode": 2, "validate": 1}),
        LOGS, 1.25,
    )  # fmt: skip
    assert text == (
        "demo: stopped in 1.2 s. 1,200 records decoded from the data topic (1,210 produced by "
        "the ingester), 3 dead letters; lag from the match update to this terminal p50 50 ms, "
        "p99 99 ms. Logs: /w/ingester.log, /w/simulator.log, /w/kafka/broker.log."
    )
    assert "\n" not in text


def test_unsorted_lags_are_ranked() -> None:
    stats = TailStats(records=3, lags_ms=[900.0, 5.0, 7.0])
    assert "p50 7 ms, p99 900 ms" in summary(stats, metrics_text({}, {}), LOGS, 0.5)


def test_a_silent_daemon_and_no_records_are_said_so() -> None:
    text = summary(TailStats(), None, LOGS[:2], 0.1)
    assert "0 records decoded from the data topic, dead letters unknown (no /metrics)" in text
    assert "no lag measured" in text
    assert "produced by" not in text


def test_no_dead_letters_is_zero_not_unknown() -> None:
    text = summary(TailStats(records=1, lags_ms=[3.0]), metrics_text({"soccer": 1}, {}), LOGS, 2)
    assert "(1 produced by the ingester), 0 dead letters;" in text
