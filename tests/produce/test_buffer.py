"""The record buffer: FIFO, bounded by records not yet acknowledged, backpressure."""

import asyncio

import pytest

from ingester.pipeline import OutRecord
from ingester.produce.buffer import RecordBuffer


def rec(n: int) -> OutRecord:
    return OutRecord(topic="t", key=str(n).encode(), value=b"v", headers=[], received_at=0.0)


async def test_records_come_out_in_order_in_batches() -> None:
    buffer = RecordBuffer(capacity=10)
    for n in range(5):
        await buffer.put(rec(n))
    assert [r.key for r in await buffer.take(3)] == [b"0", b"1", b"2"]
    assert [r.key for r in await buffer.take(10)] == [b"3", b"4"]
    assert buffer.unacknowledged == 5


async def test_put_waits_while_unacknowledged_records_fill_the_capacity() -> None:
    buffer = RecordBuffer(capacity=2)
    await buffer.put(rec(0))
    await buffer.put(rec(1))
    assert buffer.full
    taken = await buffer.take(2)  # taken, still in flight: no room yet
    blocked = asyncio.create_task(buffer.put(rec(2)))
    await asyncio.sleep(0)
    assert not blocked.done()
    buffer.acknowledge(len(taken))
    await asyncio.wait_for(blocked, 1.0)
    assert buffer.unacknowledged == 1


async def test_put_nowait_appends_in_order_and_refuses_when_full() -> None:
    buffer = RecordBuffer(capacity=2)
    await buffer.put(rec(0))
    buffer.put_nowait(rec(1))
    assert buffer.full
    with pytest.raises(asyncio.QueueFull):
        buffer.put_nowait(rec(2))
    assert buffer.unacknowledged == 2  # the refused record is not counted
    assert [r.key for r in await buffer.take(5)] == [b"0", b"1"]
    waiting = asyncio.create_task(buffer.drained())
    await asyncio.sleep(0)
    assert not waiting.done()
    buffer.acknowledge(2)
    await asyncio.wait_for(waiting, 1.0)
    buffer.put_nowait(rec(3))  # room again
    assert [r.key for r in await buffer.take(5)] == [b"3"]


async def test_a_put_nowait_ahead_of_a_waiting_put_does_not_release_its_mark() -> None:
    # Two readers share the buffer: one waits in put(), the other finds room first.
    buffer = RecordBuffer(capacity=1)
    buffer.put_nowait(rec(0))
    waiting_put = asyncio.create_task(buffer.put(rec(1)))  # ticket 1, waits for room
    await asyncio.sleep(0)
    settled = asyncio.create_task(buffer.drained())  # covers rec(0) and the waiting rec(1)
    await asyncio.sleep(0)
    buffer.acknowledge(len(await buffer.take(5)))  # room: the waiting put is woken...
    buffer.put_nowait(rec(2))  # ...but the other reader takes the room first (ticket 2)
    assert buffer.full
    await asyncio.sleep(0)
    assert not waiting_put.done()
    assert [r.key for r in await buffer.take(5)] == [b"2"]
    buffer.acknowledge(1)  # rec(2) is in; rec(1), before the mark, is not yet
    await asyncio.wait_for(waiting_put, 1.0)
    assert not settled.done()
    assert [r.key for r in await buffer.take(5)] == [b"1"]
    buffer.acknowledge(1)
    await asyncio.wait_for(settled, 1.0)


async def test_take_waits_for_a_record() -> None:
    buffer = RecordBuffer(capacity=2)
    waiting = asyncio.create_task(buffer.take(5))
    await asyncio.sleep(0)
    assert not waiting.done()
    await buffer.put(rec(7))
    assert [r.key for r in await asyncio.wait_for(waiting, 1.0)] == [b"7"]


async def test_drained_resolves_when_everything_is_acknowledged() -> None:
    buffer = RecordBuffer(capacity=5)
    await buffer.drained()  # empty: already drained
    await buffer.put(rec(1))
    drained = asyncio.create_task(buffer.drained())
    await asyncio.sleep(0)
    assert not drained.done()
    buffer.acknowledge(len(await buffer.take(5)))
    await asyncio.wait_for(drained, 1.0)


async def test_drained_waits_for_the_records_put_before_the_call_only() -> None:
    buffer = RecordBuffer(capacity=10)
    for n in range(3):
        await buffer.put(rec(n))
    settled = asyncio.create_task(buffer.drained())
    await asyncio.sleep(0)
    await buffer.put(rec(3))  # put after the call: not waited for
    buffer.acknowledge(len(await buffer.take(2)))
    await asyncio.sleep(0)
    assert not settled.done()
    buffer.acknowledge(len(await buffer.take(1)))
    await asyncio.wait_for(settled, 1.0)
    assert buffer.unacknowledged == 1
    await buffer.put(rec(4))
    abandoned = asyncio.create_task(buffer.drained())
    await asyncio.sleep(0)
    abandoned.cancel()
    buffer.acknowledge(len(await buffer.take(1)))  # not yet its mark: a cancelled waiter goes
    assert buffer._marks == []
    buffer.acknowledge(len(await buffer.take(1)))
    assert buffer.unacknowledged == 0


async def test_drained_covers_a_put_still_waiting_for_room_at_the_call() -> None:
    buffer = RecordBuffer(capacity=1)
    await buffer.put(rec(0))
    blocked = asyncio.create_task(buffer.put(rec(1)))  # handed over, waiting for room
    await asyncio.sleep(0)
    settled = asyncio.create_task(buffer.drained())
    await asyncio.sleep(0)
    buffer.acknowledge(len(await buffer.take(1)))
    await asyncio.wait_for(blocked, 1.0)
    later = asyncio.create_task(buffer.put(rec(2)))  # after the call: not waited for
    await asyncio.sleep(0)
    assert not settled.done(), "record 1 was handed over before the call"
    buffer.acknowledge(len(await buffer.take(1)))
    await asyncio.wait_for(settled, 1.0)
    await asyncio.wait_for(later, 1.0)
    assert buffer.unacknowledged == 1


async def test_a_put_cancelled_while_waiting_for_room_still_hands_its_record_over() -> None:
    """Stopping a reader (SIGTERM) cancels its wait for room, not the record it received:
    the record is queued over the capacity, flushed with the rest, and counted until then."""
    buffer = RecordBuffer(capacity=1)
    await buffer.put(rec(0))
    waiting = asyncio.create_task(buffer.put(rec(1)))
    await asyncio.sleep(0)
    drained = asyncio.create_task(buffer.drained())
    waiting.cancel()
    await asyncio.gather(waiting, return_exceptions=True)
    assert waiting.cancelled()
    assert buffer.unacknowledged == 2, "the cancelled put's record is still counted"
    taken = await buffer.take(10)
    assert [r.value for r in taken] == [rec(0).value, rec(1).value]
    buffer.acknowledge(1)
    await asyncio.sleep(0)
    assert not drained.done(), "the flush waits for the record of the cancelled put"
    buffer.acknowledge(1)
    await asyncio.wait_for(drained, 1.0)
