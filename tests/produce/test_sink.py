"""The Kafka sink against the real broker: order, acknowledgement, metrics, recovery."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import OutOfOrderSequenceNumber
from prometheus_client import CollectorRegistry

from ingester.observe.metrics import Metrics
from ingester.pipeline import OutRecord
from ingester.produce import sink as sink_module
from ingester.produce.buffer import RecordBuffer
from ingester.produce.sink import KafkaSink
from sportrix_devkit.waiting import WaitTimeout
from tests.conftest import TopicFactory
from tests.e2e.harness import wait_for


async def read_all(bootstrap: str, topic: str, count: int) -> list[tuple[bytes, bytes]]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    seen: list[tuple[bytes, bytes]] = []

    async def read() -> bool:
        for records in (await consumer.getmany(timeout_ms=500)).values():
            seen.extend((r.key or b"", r.value or b"") for r in records)
        return len(seen) >= count

    try:
        with contextlib.suppress(WaitTimeout):  # short: the caller's asserts say what is missing
            await wait_for(read, f"{count} records on {topic}", 30, interval=0)
    finally:
        await consumer.stop()
    return seen


def new_sink(
    capacity: int, factory: Callable[[], AIOKafkaProducer]
) -> tuple[KafkaSink, RecordBuffer, Metrics]:
    """A sink on a fresh buffer and metrics registry."""
    metrics = Metrics(CollectorRegistry())
    buffer = RecordBuffer(capacity=capacity)
    return KafkaSink(buffer, metrics, factory), buffer, metrics


async def run_until_drained(sink: KafkaSink, buffer: RecordBuffer, deadline: float = 60) -> None:
    """Run ``sink`` until everything in ``buffer`` is acknowledged, then stop it."""
    task = asyncio.create_task(sink.run())
    try:
        await asyncio.wait_for(buffer.drained(), deadline)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_sink_delivers_in_order_and_acknowledges(
    kafka: object, topic_factory: TopicFactory
) -> None:
    bootstrap = kafka.bootstrap_servers  # type: ignore[attr-defined]
    topic = await topic_factory(partitions=3)
    metrics = Metrics(CollectorRegistry())
    buffer = RecordBuffer(capacity=100)
    sink = KafkaSink(
        buffer,
        metrics,
        lambda: AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True),
    )
    task = asyncio.create_task(sink.run())
    try:
        now = time.time()
        for n in range(300):
            await buffer.put(
                OutRecord(
                    topic=topic,
                    key=str(n % 7).encode(),
                    value=str(n).encode(),
                    headers=[("sport", b"soccer")],
                    received_at=now,
                    sport="soccer",
                    updated_at_ms=int(now * 1000) - 50,
                )
            )
        await asyncio.wait_for(buffer.drained(), 30)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    seen = await read_all(bootstrap, topic, 300)
    assert len(seen) == 300
    for key in {k for k, _ in seen}:
        values = [int(v) for k, v in seen if k == key]
        assert values == sorted(values), "per-key order must hold"
    produced = metrics.registry.get_sample_value(
        "sportrix_ingester_records_produced_total", {"sport": "soccer"}
    )
    assert produced == 300
    lag_count = metrics.registry.get_sample_value(
        "sportrix_ingester_lag_seconds_count", {"sport": "soccer"}
    )
    assert lag_count == 300
    assert sink.connected


async def test_sink_reports_unreachable_kafka_and_keeps_records(kafka: object) -> None:
    metrics = Metrics(CollectorRegistry())
    buffer = RecordBuffer(capacity=10)
    sink = KafkaSink(
        buffer,
        metrics,
        lambda: AIOKafkaProducer(bootstrap_servers="127.0.0.1:1", request_timeout_ms=1000),
    )
    task = asyncio.create_task(sink.run())
    try:
        await buffer.put(OutRecord(topic="x", key=b"1", value=b"v", headers=[], received_at=0.0))
        await wait_for(lambda: sink.last_error, "the sink to report the failure", 20)
        assert not sink.connected
        assert buffer.unacknowledged == 1  # nothing dropped
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_record_kafka_refuses_for_good_is_dropped_and_counted_not_retried(
    kafka: object, topic_factory: TopicFactory, caplog: pytest.LogCaptureFixture
) -> None:
    bootstrap = kafka.bootstrap_servers  # type: ignore[attr-defined]
    topic = await topic_factory(partitions=1, config={"max.message.bytes": "100000"})
    sink, buffer, metrics = new_sink(
        10,
        lambda: AIOKafkaProducer(
            bootstrap_servers=bootstrap, acks="all", max_request_size=4 * 1024 * 1024
        ),
    )
    values = [b"before", b"x" * 300_000, b"after"]
    for n, value in enumerate(values):
        await buffer.put(
            OutRecord(topic=topic, key=str(n).encode(), value=value, headers=[], received_at=0.0)
        )
    await run_until_drained(sink, buffer, 30)
    seen = await read_all(bootstrap, topic, 2)
    assert [v for _, v in seen] == [b"before", b"after"]
    errors = metrics.registry.get_sample_value(
        "sportrix_ingester_produce_errors_total", {"error": "MessageSizeTooLargeError"}
    )
    assert errors == 1
    dropped = metrics.registry.get_sample_value(
        "sportrix_ingester_records_dropped_total", {"error": "MessageSizeTooLargeError"}
    )
    assert dropped == 1
    assert any("record dropped" in r.getMessage() for r in caplog.records)


class StuckProducer(AIOKafkaProducer):  # type: ignore[misc]
    """An idempotent producer that gets stuck after ``healthy`` batches, as aiokafka's can
    after a broker outage (aio-libs/aiokafka#1017): every later batch fails with the fatal
    ``OutOfOrderSequenceNumber`` and nothing of it reaches the broker."""

    def __init__(self, healthy: int, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.healthy = healthy

    async def send_batch(self, batch: object, topic: str, *, partition: int) -> object:
        if self.healthy <= 0:
            failed: asyncio.Future[object] = asyncio.get_running_loop().create_future()
            failed.set_exception(OutOfOrderSequenceNumber("stuck idempotent producer"))
            return failed
        self.healthy -= 1
        return await super().send_batch(batch, topic, partition=partition)


async def test_a_stuck_producer_is_rebuilt_and_the_unacknowledged_records_resent_in_order(
    kafka: object, topic_factory: TopicFactory
) -> None:
    bootstrap = kafka.bootstrap_servers  # type: ignore[attr-defined]
    topic = await topic_factory(partitions=3)
    metrics = Metrics(CollectorRegistry())
    buffer = RecordBuffer(capacity=1000)
    built: list[StuckProducer] = []

    def factory() -> AIOKafkaProducer:
        # the first producer gets stuck after 2 batches; its replacements are healthy
        producer = StuckProducer(
            2 if not built else 1_000_000,
            bootstrap_servers=bootstrap,
            acks="all",
            enable_idempotence=True,
        )
        built.append(producer)
        return producer

    sink = KafkaSink(buffer, metrics, factory)
    count = 600
    now = time.time()
    for n in range(count):  # buffered before the sink runs: several batches per partition
        await buffer.put(
            OutRecord(
                topic=topic,
                key=str(n % 7).encode(),
                value=str(n).encode(),
                headers=[],
                received_at=now,
                sport="soccer",
            )
        )
    task = asyncio.create_task(sink.run())
    try:
        await asyncio.wait_for(buffer.drained(), 60)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert len(built) >= 2, "the stuck producer was replaced"
    registry = metrics.registry
    assert registry.get_sample_value("sportrix_ingester_producer_rebuilds_total") >= 1
    assert (
        registry.get_sample_value(
            "sportrix_ingester_produce_errors_total", {"error": "OutOfOrderSequenceNumber"}
        )
        or 0
    ) >= 1
    seen = await read_all(bootstrap, topic, count)
    assert sorted(int(v) for _, v in seen) == list(range(count)), "every record exactly once"
    for key in {k for k, _ in seen}:
        values = [int(v) for k, v in seen if k == key]
        assert values == sorted(values), f"key {key!r}: order broken across the rebuild"
    assert (
        registry.get_sample_value("sportrix_ingester_records_produced_total", {"sport": "soccer"})
        == count
    )


async def test_an_oversized_batch_is_split_down_to_the_record_kafka_refuses_alone(
    kafka: object, topic_factory: TopicFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """Against a topic whose ``max.message.bytes`` is far below a full batch, every record
    that fits alone lands, in order per key; only the one too large on its own is dropped,
    logged and counted."""
    bootstrap = kafka.bootstrap_servers  # type: ignore[attr-defined]
    topic = await topic_factory(partitions=3, config={"max.message.bytes": "20000"})
    sink, buffer, metrics = new_sink(
        1000,
        lambda: AIOKafkaProducer(  # as the daemon builds it (app.Daemon._new_producer)
            bootstrap_servers=bootstrap,
            acks="all",
            enable_idempotence=True,
            max_batch_size=512 * 1024,
            max_request_size=4 * 1024 * 1024,
        ),
    )
    records = [
        OutRecord(
            topic=topic,
            key=str(41000 + n % 30).encode(),
            value=f"{n:06d}".encode() + os.urandom(60_000 if n == 250 else 1_000),
            headers=[],
            received_at=time.time(),
            sport="soccer",
        )
        for n in range(500)
    ]
    for record in records:  # buffered before the sink runs: one take, batches of ~500 KiB
        await buffer.put(record)
    await run_until_drained(sink, buffer)
    seen = await read_all(bootstrap, topic, 499)
    numbers = [int(v[:6]) for _, v in seen]
    assert sorted(numbers) == [n for n in range(500) if n != 250], "all but the oversized one"
    for key in {k for k, _ in seen}:
        mine = [int(v[:6]) for k, v in seen if k == key]
        assert mine == sorted(mine), f"key {key!r}: order broken by the split"
    registry = metrics.registry
    assert (
        registry.get_sample_value(
            "sportrix_ingester_records_dropped_total", {"error": "MessageSizeTooLargeError"}
        )
        == 1
    )
    assert (
        registry.get_sample_value("sportrix_ingester_records_produced_total", {"sport": "soccer"})
        == 499
    )
    dropped = [r.getMessage() for r in caplog.records if "record dropped" in r.getMessage()]
    assert len(dropped) == 1, dropped
    assert "key 41010" in dropped[0], dropped


async def test_a_refused_batch_does_not_derail_the_idempotent_sequence(
    kafka: object, topic_factory: TopicFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """A batch (or a record alone) the broker refuses as too large, on a partition that
    already holds records, costs no ``OutOfOrderSequenceNumber``, no producer rebuild and no
    ``Kafka produce failed`` line: the producer's sequence for that partition counted the
    refused records, so the records after them are sent by a fresh producer."""
    bootstrap = kafka.bootstrap_servers  # type: ignore[attr-defined]
    topic = await topic_factory(partitions=1, config={"max.message.bytes": "20000"})
    sink, buffer, metrics = new_sink(
        1000,
        lambda: AIOKafkaProducer(
            bootstrap_servers=bootstrap,
            acks="all",
            enable_idempotence=True,
            max_batch_size=512 * 1024,
            max_request_size=4 * 1024 * 1024,
        ),
    )

    def record(n: int, size: int) -> OutRecord:
        value = f"{n:06d}".encode() + os.urandom(size)
        return OutRecord(topic, str(41000 + n % 7).encode(), value, [], time.time(), "soccer")

    buffer.put_nowait(record(0, 100))
    task = asyncio.create_task(sink.run())
    try:
        await asyncio.wait_for(buffer.drained(), 60)  # the partition's sequence is past 0
        for n in range(1, 62):  # one take: a 60 KiB batch, with one record too large alone
            buffer.put_nowait(record(n, 30_000 if n == 31 else 1_000))
        await asyncio.wait_for(buffer.drained(), 60)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    numbers = [int(v[:6]) for _, v in await read_all(bootstrap, topic, 61)]
    assert numbers == [n for n in range(62) if n != 31]
    registry = metrics.registry
    assert registry.get_sample_value("sportrix_ingester_producer_rebuilds_total") == 0
    assert (
        registry.get_sample_value(
            "sportrix_ingester_produce_errors_total", {"error": "OutOfOrderSequenceNumber"}
        )
        is None
    )
    assert not [r.getMessage() for r in caplog.records if "produce failed" in r.getMessage()]


async def test_a_slow_but_acknowledging_kafka_is_not_a_stall(
    kafka: object,
    topic_factory: TopicFactory,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A take that needs many rounds (one batch per partition each) against a broker that
    acknowledges every batch, slowly (a produce quota), is never a stall: the stall clock
    restarts with each acknowledgement, so ``/readyz`` does not say Kafka stopped answering."""
    monkeypatch.setattr(sink_module, "ACK_STALL_SECONDS", 2.0)
    bootstrap = kafka.bootstrap_servers  # type: ignore[attr-defined]
    topic = await topic_factory(partitions=1)

    def throttled() -> AIOKafkaProducer:
        producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap,
            acks="all",
            enable_idempotence=True,
            max_batch_size=512 * 1024,
            max_request_size=4 * 1024 * 1024,
        )
        send_batch = producer.send_batch

        async def slowly(*args: object, **kwargs: object) -> object:
            await asyncio.sleep(0.3)  # each batch acknowledged, 0.3 s late
            return await send_batch(*args, **kwargs)

        producer.send_batch = slowly
        return producer

    sink, buffer, _ = new_sink(1000, throttled)
    for _ in range(100):  # 5 records of 100 kB per 512 KiB batch: 20 rounds, 6 s or more
        buffer.put_nowait(OutRecord(topic, b"41000", os.urandom(100_000), [], time.time()))
    stalls: list[float] = []
    task = asyncio.create_task(sink.run())
    try:
        async with asyncio.timeout(120):
            while buffer.unacknowledged:
                if sink.stalled:
                    stalls.append(sink.waiting_for())
                await asyncio.sleep(0.05)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert not stalls, f"stalled while Kafka acknowledged: {stalls[:3]}…"
    assert not [r.getMessage() for r in caplog.records if "stalled" in r.getMessage()]


async def test_an_idle_sink_sends_at_once_whatever_the_producer_linger(
    kafka: object, topic_factory: TopicFactory
) -> None:
    """Adaptive linger: the sink closes its batches, so the producer sends them with its
    next request instead of holding them for ``linger_ms`` (a minute here), and says where
    each record's time went."""
    bootstrap = kafka.bootstrap_servers  # type: ignore[attr-defined]
    topic = await topic_factory(partitions=3)
    sink, buffer, metrics = new_sink(
        100,
        lambda: AIOKafkaProducer(
            bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=60_000
        ),
    )
    now = time.time()
    for n in range(3):
        buffer.put_nowait(OutRecord(topic, str(n).encode(), b"v", [], received_at=now))
    await run_until_drained(sink, buffer, deadline=30)  # a minute's linger would time out
    assert [v for _, v in await read_all(bootstrap, topic, 3)] == [b"v"] * 3
    for stage in ("processed", "queued", "batched", "acknowledged"):
        assert sum(metrics.produce_stages.labels(stage=stage).counts) == 3, stage


async def test_a_round_waits_for_every_unit_and_keeps_each_outcome() -> None:
    """The round's futures, as ``gather(return_exceptions=True)`` gave them: it returns
    only once all are done, with when each was, its result, exception or cancellation."""
    loop = asyncio.get_running_loop()
    futures: list[asyncio.Future[object]] = [loop.create_future() for _ in range(3)]
    answers = sink_module._Answers()
    for index, future in enumerate(futures):
        answers.follow(index, future)
    waiting = asyncio.create_task(answers.all_in())
    futures[0].set_result("ok")
    futures[2].cancel()
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert not waiting.done()
    futures[1].set_exception(OutOfOrderSequenceNumber())
    await asyncio.wait_for(waiting, 5)
    assert sorted(answers.at) == [0, 1, 2]
    outcomes = [sink_module._outcome(f) for f in futures]
    assert outcomes[0] == "ok"
    assert isinstance(outcomes[1], OutOfOrderSequenceNumber)
    assert isinstance(outcomes[2], asyncio.CancelledError)
