"""The sink's batched sends keep the default partitioner's placement and per-key order."""

from __future__ import annotations

import contextlib
import time

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner
from prometheus_client import CollectorRegistry

from ingester.observe.metrics import Metrics
from ingester.pipeline import OutRecord
from ingester.produce.buffer import RecordBuffer
from ingester.produce.sink import KafkaSink
from sportrix_devkit.waiting import WaitTimeout, wait_until_async
from tests.conftest import TopicFactory
from tests.produce.test_sink import run_until_drained


async def test_batches_land_where_send_would_put_them_in_order(
    kafka: object, topic_factory: TopicFactory
) -> None:
    bootstrap = kafka.bootstrap_servers  # type: ignore[attr-defined]
    topic = await topic_factory(partitions=5)
    buffer = RecordBuffer(capacity=10_000)
    sink = KafkaSink(
        buffer,
        Metrics(CollectorRegistry()),
        lambda: AIOKafkaProducer(
            bootstrap_servers=bootstrap,
            acks="all",
            enable_idempotence=True,
            max_request_size=4 * 1024 * 1024,
        ),
    )
    sent: list[tuple[bytes | None, bytes]] = []
    for n in range(3000):
        key: bytes | None = None if n % 500 == 7 else str(41000 + n % 37).encode()
        value = str(n).encode() + (b"x" * 200_000 if n % 700 == 3 else b"")  # some large ones
        sent.append((key, value))
        await buffer.put(OutRecord(topic, key, value, [("sport", b"soccer")], time.time()))
    await run_until_drained(sink, buffer)

    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    seen: list[tuple[int, bytes | None, bytes]] = []

    async def read() -> bool:
        for records in (await consumer.getmany(timeout_ms=500)).values():
            seen.extend((r.partition, r.key, r.value or b"") for r in records)
        return len(seen) >= len(sent)

    try:
        with contextlib.suppress(WaitTimeout):  # short: the asserts below say what is missing
            await wait_until_async(read, f"{len(sent)} records on {topic}", 30, interval=0)
    finally:
        await consumer.stop()

    assert sorted(v for _, _, v in seen) == sorted(v for _, v in sent)
    partitioner = DefaultPartitioner()
    for partition, key, _ in seen:
        if key is not None:
            assert partition == partitioner(key, [0, 1, 2, 3, 4], [])
    for key in {k for k, _ in sent if k is not None}:
        got = [v for _, k, v in seen if k == key]
        assert got == [v for k, v in sent if k == key], f"order of key {key!r}"
