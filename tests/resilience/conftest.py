"""Fault-injection suite: real Kafka, the simulator and the daemon as real processes.

Every test here is marked ``resilience`` and ``slow`` (``pytest -m "not slow"`` skips them).
Broker outages use a broker of their own (:func:`outage_kafka`), so stopping it never
disturbs the other tests; the rest share the session broker.

Each test compares, per match, what the simulator sent (``/_sim/stats``), what the daemon
received (``/metrics``, ``/status``) and what the topic holds (:mod:`tests.resilience.ledger`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sportrix_devkit.localkafka import LocalKafka, LocalKafkaError
from tests.e2e.conftest import bootstrap, data_reader, dlq_reader, topics
from tests.e2e.harness import Daemon, Topics, wait_for

__all__ = [
    "bootstrap",
    "data_reader",
    "dlq_reader",
    "outage_kafka",
    "outage_topics",
    "records_flowing",
    "topics",
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.slow)
            item.add_marker(pytest.mark.kafka)


@pytest.fixture(scope="session")
def outage_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    """A broker of the outage tests' own: they stop and restart it."""
    broker = LocalKafka(tmp_path_factory.mktemp("outage-kafka"))
    try:
        broker.start()
    except LocalKafkaError as exc:
        pytest.fail(f"no Kafka broker for the outage tests: {exc}", pytrace=False)
    try:
        yield broker
    finally:
        broker.stop()


def outage_topics(name: str) -> Topics:
    """Topic names of one test on the outage broker (no fixture: that broker is not the
    session's, which ``topics`` would start)."""
    stamp = f"{name}-{time.monotonic_ns()}"
    return Topics(f"{stamp}-data", f"{stamp}-config", f"{stamp}-dlq")


async def records_flowing(daemon: Daemon) -> None:
    """Wait until Kafka has acknowledged 100 of the daemon's records."""
    await wait_for(
        lambda: daemon.total("sportrix_ingester_records_produced_total") >= 100,
        "records flowing",
    )
