"""Fixtures of the consumer-example tests: the builds, and records the daemon wrote."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from ingester.consume import LiveScoresDecoder
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


NAMESPACE = "com.sportrix.livescores"


@dataclass(frozen=True)
class Written:
    """A data topic the daemon wrote and left, the records in it, and what the simulator sent."""

    bootstrap: str
    topic: str
    records: list[Record]
    #: The simulator's ``data`` per ``(match_id, seq)`` of every record.
    sent: dict[tuple[int, int], dict[str, Any]]


def long_cricket_match(simulator: Simulator) -> int:
    """A live cricket Test match: thousands of changes long, so it never ends during a test
    (a live T20 may be a few dozen changes from its end, seconds at the tests' rate)."""
    for match_id in simulator.matches("cricket"):
        if simulator.get(f"/_sim/matches/{match_id}")["format"] == "Test":
            return match_id
    raise AssertionError("the simulator's catalogue has no live cricket Test match")


@asynccontextmanager
async def daemon_wrote(
    tmp: Path, bootstrap: str, registry_url: str | None = None
) -> AsyncIterator[Written]:
    """Two soccer matches and a cricket Test match, simulator → daemon → the test broker.

    The daemon is stopped (flushed) before the tests read, so the topic no longer changes.
    ``registry_url``: the daemon writes the registry wire format, registering with it.
    """
    run = uuid.uuid4().hex[:8]
    topics = Topics(f"examples-{run}", f"examples-{run}-config", f"examples-{run}-dlq")
    settings = {"SCHEMA_REGISTRY_URL": registry_url} if registry_url else {}
    simulator = Simulator(tmp, "--update-rate", "5")
    daemon = Daemon(tmp, bootstrap, simulator.url, topics, **settings)
    reader = TopicReader(bootstrap, topics.data, decode=False)
    try:
        matches = [*simulator.matches("soccer")[:2], long_cricket_match(simulator)]
        await daemon.wait_ready()
        await add_matches(bootstrap, topics.config, matches)
        await reader.poll_until(
            lambda rs: all(len(reader.by_match().get(m, [])) >= 15 for m in matches),
            "15 records of every match",
        )
        assert daemon.stop() == 0, daemon.output()[-3000:]
        total = await record_count(bootstrap, topics.data)
        await reader.poll_until(lambda rs: len(rs) == total, f"all {total} records")
        records, sent = [], {}
        decoder = LiveScoresDecoder(registry_url=registry_url)
        for record in reader.records:
            score = await decoder.decode_record(record)
            records.append(replace(record, decoded=score.record))
            if (score.match_id, score.seq) not in sent:
                sent[(score.match_id, score.seq)] = simulator.state_at(
                    score.match_id, score.seq or 0
                )
        await decoder.close()
        yield Written(bootstrap, topics.data, records, sent)
    finally:
        await reader.close()
        daemon.stop()
        simulator.stop()


@pytest.fixture(scope="module")
async def written(kafka: Any, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Written]:
    """What :func:`daemon_wrote` wrote, single-object encoded, for every test of a module."""
    async with daemon_wrote(tmp_path_factory.mktemp("written"), str(kafka.bootstrap_servers)) as w:
        yield w


def check_lines(lines: list[dict[str, Any]], written: Written) -> None:
    """The JSON lines of an example hold every record of the topic, each one as written, with
    key = ``match_id``, ``schema`` header = full name, and the scores the simulator sent."""
    expected = {(r.partition, r.offset): r for r in written.records}
    assert len(lines) == len(expected)
    assert {(line["partition"], line["offset"]) for line in lines} == set(expected)
    soccer = 0
    for line in lines:
        written_record = expected[(line["partition"], line["offset"])]
        record: dict[str, Any] = line["record"]
        assert written_record.decoded is not None
        where = f"{line['partition']}@{line['offset']}"
        assert line["key"] == str(record["match_id"]), where
        assert line["schema"] == line["name"] == f"{NAMESPACE}.{record['sport'].title()}MatchState"
        for field in ("match_id", "sport", "op", "seq", "score"):
            assert record[field] == written_record.decoded[field], (where, field)
        sent = written.sent[(record["match_id"], record["seq"])]
        if record["sport"] == "soccer":
            soccer += 1
            assert record["score"] == sent["score"], where
        else:
            assert (record["score"]["runs"], record["score"]["wickets"]) == (
                sent["score"]["runs"],
                sent["score"]["wickets"],
            ), where
    assert soccer >= 30  # two soccer matches, at least 15 records each
