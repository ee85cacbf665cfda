"""The benchmark's topics: a data topic stamped with the broker's append time, and reading it.

The data topic is created with ``message.timestamp.type=LogAppendTime`` before the daemon
starts (the daemon only creates missing topics), so each record's timestamp is the moment
the broker appended it. Lag = that timestamp - the record's ``updated_at``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from ingester.control.commands import encode_command
from sportrix_devkit.bench.ledger import read_varint

__all__ = [
    "APPEND_TIME",
    "Appended",
    "create_topic",
    "follow",
    "read_appended",
    "read_records",
    "updated_at_ms",
]

T = TypeVar("T")

#: The data topic's config: the broker stamps each record with its append time.
APPEND_TIME = {"message.timestamp.type": "LogAppendTime"}
_PREFIX = 10  # C3 01 + the 8-byte schema fingerprint


@dataclass(frozen=True, slots=True)
class Appended:
    """What the lag needs of one record: append time, ``updated_at``, ``received_at`` (ms)."""

    append_ms: int
    updated_ms: int | None
    received_ms: int


async def create_topic(bootstrap: str, name: str, partitions: int, config: dict[str, str]) -> None:
    """Create ``name`` with topic ``config``."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1, topic_configs=config)])
    finally:
        await admin.close()


#: Partitions of the bench's config topic: at most this many replicas get a share.
CONFIG_PARTITIONS = 12


async def follow(bootstrap: str, config_topic: str, match_ids: list[int]) -> None:
    """Create the compacted config topic and write an ``add`` command per match."""
    await create_topic(bootstrap, config_topic, CONFIG_PARTITIONS, {"cleanup.policy": "compact"})
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        futures = [
            await producer.send(config_topic, value, key=key)
            for key, value in (encode_command("add", m) for m in match_ids)
        ]
        for future in futures:
            await future
    finally:
        await producer.stop()


def updated_at_ms(value: bytes) -> tuple[int | None, int]:
    """``(updated_at, received_at)`` of a single-object encoded record, from its prefix.

    Every schema starts ``match_id`` (long), ``sport`` (string), ``op`` (enum), ``seq`` and
    ``updated_at`` (both ``["null", "long"]``), ``received_at`` (long): no full decode needed.
    """
    _, pos = read_varint(value, _PREFIX)
    length, pos = read_varint(value, pos)
    _, pos = read_varint(value, pos + length)
    branch, pos = read_varint(value, pos)
    if branch:
        _, pos = read_varint(value, pos)
    branch, pos = read_varint(value, pos)
    updated = None
    if branch:
        updated, pos = read_varint(value, pos)
    return updated, read_varint(value, pos)[0]


async def read_records(
    bootstrap: str,
    topic: str,
    partitions: int,
    keep: Callable[[ConsumerRecord[Any, Any]], T | None],
) -> list[T]:
    """``keep(record)`` of every record of ``topic`` up to its current end (``None`` left
    out): partition after partition in turn, each in offset order, so a match's records
    (one key, one partition) keep the topic's order."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        assigned = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        ends = await consumer.end_offsets(assigned)
        remaining = {tp for tp in assigned if ends[tp] > 0}
        out: list[T] = []
        while remaining:
            batches = await consumer.getmany(*remaining, timeout_ms=1000, max_records=50_000)
            for tp, records in batches.items():
                for record in records:
                    item = keep(record)
                    if item is not None:
                        out.append(item)
                if records and records[-1].offset + 1 >= ends[tp]:
                    remaining.discard(tp)
        return out
    finally:
        await consumer.stop()


def _appended(record: ConsumerRecord[Any, Any]) -> Appended | None:
    if not record.value:
        return None
    updated, received = updated_at_ms(record.value)
    return Appended(record.timestamp, updated, received)


async def read_appended(bootstrap: str, topic: str, partitions: int) -> list[Appended]:
    """Every record of ``topic`` up to its current end, in no particular order."""
    return await read_records(bootstrap, topic, partitions, _appended)
