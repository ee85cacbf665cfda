"""Fixtures of the consumer-example tests: the builds, and records the daemon wrote."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from tests.e2e.harness import Daemon, Record, Simulator, TopicReader, Topics, add_matches
from tests.examples.builds import JavaBuild, build_go, build_java


async def record_count(bootstrap: str, topic: str) -> int:
    """How many records ``topic`` holds (its end offsets: nothing is ever deleted from it)."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return sum((await consumer.end_offsets(partitions)).values())
    finally:
        await consumer.stop()


@pytest.fixture(scope="session")
def java_build() -> JavaBuild:
    """The Java examples, built once per change of their sources."""
    return build_java()


@pytest.fixture(scope="session")
def go_binary() -> Path:
    """The Go example's binary, built once per change of its sources."""
    return build_go()


@dataclass(frozen=True)
class Written:
    """A data topic the daemon wrote and left, the records in it, and what the simulator sent."""

    bootstrap: str
    topic: str
    records: list[Record]
    #: The simulator's ``data`` per ``(match_id, seq)`` of every record.
    sent: dict[tuple[int, int], dict[str, Any]]


@pytest.fixture(scope="module")
async def written(kafka: Any, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Written]:
    """Two soccer matches and one cricket match, simulator → daemon → the test broker.

    The daemon is stopped (flushed) before the tests read, so the topic no longer changes.
    """
    tmp = tmp_path_factory.mktemp("written")
    bootstrap = str(kafka.bootstrap_servers)
    run = uuid.uuid4().hex[:8]
    topics = Topics(f"examples-{run}", f"examples-{run}-config", f"examples-{run}-dlq")
    simulator = Simulator(tmp, "--update-rate", "5")
    daemon = Daemon(tmp, bootstrap, simulator.url, topics)
    reader = TopicReader(bootstrap, topics.data)
    try:
        matches = simulator.matches("soccer")[:2] + simulator.matches("cricket")[:1]
        await daemon.wait_ready()
        await add_matches(bootstrap, topics.config, matches)
        await reader.poll_until(
            lambda rs: all(len(reader.by_match().get(m, [])) >= 15 for m in matches),
            "15 records of every match",
        )
        assert daemon.stop() == 0, daemon.output()[-3000:]
        total = await record_count(bootstrap, topics.data)
        await reader.poll_until(lambda rs: len(rs) == total, f"all {total} records")
        sent = {}
        for record in reader.records:
            assert record.decoded is not None
            match_id, seq = record.decoded["match_id"], record.decoded["seq"]
            if (match_id, seq) not in sent:
                sent[(match_id, seq)] = simulator.state_at(match_id, seq)
        yield Written(bootstrap, topics.data, list(reader.records), sent)
    finally:
        await reader.close()
        daemon.stop()
        simulator.stop()
