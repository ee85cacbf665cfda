"""The record buffer with a disk spool behind it: one FIFO through memory, disk and back."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from ingester.observe.metrics import Metrics
from ingester.pipeline import OutRecord
from ingester.produce.buffer import RecordBuffer
from ingester.produce.spool.log import SegmentLog
from ingester.produce.spool.overflow import REPLAYED_HEADER, DiskOverflow
from ingester.produce.spool.records import to_payload
from sportrix_devkit.waiting import wait_until_async

MiB = 1024 * 1024


def rec(n: int, sport: str | None = "soccer") -> OutRecord:
    return OutRecord(
        topic="t",
        key=str(n).encode(),
        value=b"v" * 100,
        headers=[("sport", b"soccer")],
        received_at=float(n),
        sport=sport,
        updated_at_ms=n,
    )


def total(metrics: Metrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(f"sportrix_ingester_{name}", labels)
    return value or 0.0


def spooled_buffer(
    directory: Path,
    metrics: Metrics,
    capacity: int = 3,
    max_bytes: int = 64 * MiB,
    follows: Callable[[OutRecord], bool] = lambda _: True,
    stalled: Callable[[], bool] = lambda: True,
) -> tuple[RecordBuffer, DiskOverflow]:
    overflow = DiskOverflow(
        SegmentLog(directory, max_bytes),
        metrics,
        tail_limit=max(1, capacity // 3),
        sync_interval=0.05,
        follows=follows,
        stalled=stalled,
    )
    return RecordBuffer(capacity, overflow, metrics), overflow


@contextlib.asynccontextmanager
async def running(buffer: RecordBuffer, overflow: DiskOverflow) -> AsyncIterator[None]:
    task = asyncio.create_task(overflow.run(buffer.wake))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def take_all(buffer: RecordBuffer, expected: int) -> list[bytes | None]:
    """Take and acknowledge batch by batch (as the sink does) until ``expected`` records."""
    keys: list[bytes | None] = []
    while len(keys) < expected:
        batch = await asyncio.wait_for(buffer.take(2), 5.0)
        keys += [r.key for r in batch]
        buffer.acknowledge(len(batch))
    return keys


async def test_records_past_memory_go_to_disk_and_come_back_in_order(tmp_path: Path) -> None:
    metrics = Metrics()
    buffer, overflow = spooled_buffer(tmp_path, metrics, capacity=3)
    async with running(buffer, overflow):
        for n in range(20):  # Kafka away: nothing is taken; reading never waits
            assert not buffer.full
            buffer.put_nowait(rec(n))
        await wait_until_async(
            lambda: overflow.records == 20 and overflow.pending == 0, "20 records spooled"
        )
        assert buffer.in_memory == 0  # Kafka does not answer: straight to disk
        assert buffer.unacknowledged == 20
        assert total(metrics, "spool_records_written_total") == 20
        for n in range(20, 25):  # new frames keep coming while the spool drains
            buffer.put_nowait(rec(n))
        assert await take_all(buffer, 25) == [str(n).encode() for n in range(25)]
    assert overflow.records == 0
    assert buffer.unacknowledged == 0
    assert total(metrics, "spool_records_read_total") >= 20
    assert total(metrics, "upstream_pauses_total") == 0


async def test_a_burst_memory_absorbs_in_time_never_touches_the_disk(tmp_path: Path) -> None:
    metrics = Metrics()
    buffer, overflow = spooled_buffer(tmp_path, metrics, capacity=6, stalled=lambda: False)
    for n in range(5):  # one over the queue's share (4): it waits in the tail
        buffer.put_nowait(rec(n))
    assert overflow.pending == 1
    assert await take_all(buffer, 5) == [str(n).encode() for n in range(5)]
    assert total(metrics, "spool_records_written_total") == 0
    assert not overflow.active


async def test_drained_waits_for_the_spooled_records_too(tmp_path: Path) -> None:
    metrics = Metrics()
    buffer, overflow = spooled_buffer(tmp_path, metrics, capacity=2)
    async with running(buffer, overflow):
        for n in range(10):
            buffer.put_nowait(rec(n))
        drained = asyncio.create_task(buffer.drained())
        await wait_until_async(lambda: overflow.pending == 0, "the tail written")
        keys = await take_all(buffer, 8)
        assert not drained.done()
        keys += await take_all(buffer, 2)
        await asyncio.wait_for(drained, 5.0)
    assert keys == [str(n).encode() for n in range(10)]


async def test_a_full_spool_pauses_reading_once_and_loses_nothing(tmp_path: Path) -> None:
    metrics = Metrics()
    buffer, overflow = spooled_buffer(tmp_path, metrics, capacity=4, max_bytes=16 * MiB)
    sent = 0
    async with running(buffer, overflow):
        while not buffer.full:  # 3 on disk (15 MiB), 1 the spool refuses
            record = rec(sent)
            record.value = b"x" * (5 * MiB)
            buffer.put_nowait(record)
            sent += 1
        assert (sent, overflow.records, overflow.pending) == (4, 3, 1)
        assert total(metrics, "spool_write_errors_total", error="full") == 1
        waiting = [asyncio.create_task(buffer.put(rec(100 + n))) for n in range(2)]
        await asyncio.sleep(0)
        assert not any(task.done() for task in waiting)
        assert total(metrics, "upstream_pauses_total") == 1  # one pause, two waiting readers
        keys = await take_all(buffer, sent + 2)
        await asyncio.wait_for(asyncio.gather(*waiting), 5.0)
    assert keys == [str(n).encode() for n in range(sent)] + [b"100", b"101"]
    assert overflow.records == 0


async def test_shutdown_keeps_every_record_for_the_next_start_in_order(tmp_path: Path) -> None:
    metrics = Metrics()
    buffer, overflow = spooled_buffer(tmp_path, metrics, capacity=3)
    async with running(buffer, overflow):
        for n in range(10):
            buffer.put_nowait(rec(n))
        await wait_until_async(lambda: overflow.pending == 0, "the tail written")
        in_flight = await buffer.take(2)  # sent, never acknowledged: Kafka went away
        assert [r.key for r in in_flight] == [b"0", b"1"]
        for n in range(10, 13):
            buffer.put_nowait(rec(n))  # still in the tail at shutdown
    assert buffer.persist() == 13

    following = {5, 6, 7, 8, 9, 10, 11, 12, 13}
    restarted = Metrics()
    buffer, overflow = spooled_buffer(
        tmp_path, restarted, follows=lambda r: int(r.key or b"-1") in following
    )
    assert buffer.unacknowledged == 13
    buffer.put_nowait(rec(13))  # a new frame: behind everything kept
    records: list[OutRecord] = []
    while len(records) < 14:
        batch = await asyncio.wait_for(buffer.take(4), 5.0)
        records += batch
        buffer.acknowledge(len(batch))
    assert [r.key for r in records] == [str(n).encode() for n in range(14)]
    replayed = [int(r.key or b"") for r in records if REPLAYED_HEADER in r.headers]
    assert replayed == [0, 1, 2, 3, 4]  # the matches this replica does not follow now
    assert total(restarted, "replayed_records_total") == 5
    assert overflow.records == 0


async def test_dead_letters_and_commands_are_never_marked_replayed(tmp_path: Path) -> None:
    metrics = Metrics()
    buffer, overflow = spooled_buffer(tmp_path, metrics, capacity=1, follows=lambda _: False)
    async with running(buffer, overflow):
        buffer.put_nowait(rec(0))
        buffer.put_nowait(rec(1, sport=None))  # a dead letter: no sport
        await wait_until_async(lambda: overflow.records == 2, "both records spooled")
        records = [*await buffer.take(5)]
        buffer.acknowledge(len(records))
        records += await buffer.take(5)
    # the data record of a match not followed is marked; the dead letter never
    assert [REPLAYED_HEADER in r.headers for r in records] == [True, False]


@pytest.mark.parametrize("capacity", [1, 4])
async def test_order_holds_through_many_rounds_of_memory_and_disk(
    tmp_path: Path, capacity: int
) -> None:
    metrics = Metrics()
    buffer, overflow = spooled_buffer(tmp_path, metrics, capacity=capacity)
    sent = 0
    keys: list[bytes | None] = []
    async with running(buffer, overflow):
        for round_ in range(6):
            for _ in range(7 + round_):
                buffer.put_nowait(rec(sent))
                sent += 1
            if round_ % 2:  # sometimes the spool is written, sometimes not
                await wait_until_async(lambda: overflow.pending == 0, "the tail written")
            keys += await take_all(buffer, min(sent, len(keys) + 5) - len(keys))
        keys += await take_all(buffer, sent - len(keys))
    assert keys == [str(n).encode() for n in range(sent)]


async def test_a_kafka_that_answers_gets_backpressure_not_the_disk(tmp_path: Path) -> None:
    # The daemon at saturation: Kafka answers, slower than records arrive.
    metrics = Metrics()
    stalled = False
    buffer, overflow = spooled_buffer(tmp_path, metrics, capacity=6, stalled=lambda: stalled)
    async with running(buffer, overflow):
        while not buffer.full:
            buffer.put_nowait(rec(buffer.unacknowledged))
        assert (buffer.in_memory, overflow.pending) == (6, 2)
        waiting = asyncio.create_task(buffer.put(rec(6)))
        await asyncio.sleep(3 * 0.05)  # the spool's ticks pass: nothing goes to disk
        assert not waiting.done()
        assert overflow.records == 0
        assert total(metrics, "upstream_pauses_total") == 1
        stalled = True  # Kafka stops answering: the tail goes to disk, reading resumes
        await asyncio.wait_for(waiting, 5.0)
        assert (overflow.records, overflow.pending) == (2, 1)  # the waiting one queued behind
        assert await take_all(buffer, 7) == [str(n).encode() for n in range(7)]
    assert total(metrics, "spool_records_written_total") >= 2


async def test_a_spooled_payload_that_cannot_be_decoded_is_counted_and_skipped(
    tmp_path: Path,
) -> None:
    store = SegmentLog(tmp_path, 64 * MiB)
    foreign = [b"not a record", b"nor this", b"nor that"]  # a read of two gets only these
    store.append([to_payload(rec(0)), *foreign, to_payload(rec(1))])
    store.close()
    metrics = Metrics()
    buffer, overflow = spooled_buffer(tmp_path, metrics, capacity=3)
    assert await take_all(buffer, 2) == [b"0", b"1"]
    assert total(metrics, "spool_damaged_records_total") == 3
    assert overflow.records == 0  # the skipped ones are released with their neighbours
