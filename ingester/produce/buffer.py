"""The bounded buffer between the upstream readers and the Kafka sink.

Capacity counts every record received and not yet acknowledged by Kafka (queued plus in
flight), so memory stays bounded whatever Kafka does. When it is full, :meth:`put` waits
(and :meth:`put_nowait` refuses): the upstream readers stop reading, and TCP pushes back on
the server (backpressure). A record handed to :meth:`put` is never abandoned, even when the
wait is cancelled.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque

from ingester.pipeline import OutRecord

__all__ = ["RecordBuffer"]


class RecordBuffer:
    """FIFO of :class:`OutRecord` with a capacity on records not yet acknowledged.

    Every :meth:`put` or :meth:`put_nowait` takes a ticket when it starts, also a ``put`` that
    then waits for room, so :meth:`acknowledged` can wait for exactly the records handed over
    before a point in time, whatever order the waiting ones end up queued in.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._queue: deque[tuple[int, OutRecord]] = deque()
        self._taken: deque[int] = deque()  # tickets taken by the sink, not yet acknowledged
        self._pending: set[int] = set()  # tickets put (or waiting) and not yet acknowledged
        self._next_ticket = 0
        self._unacknowledged = 0
        self._readable = asyncio.Event()
        self._writable = asyncio.Event()
        self._writable.set()
        self._marks: list[tuple[int, asyncio.Future[None]]] = []

    @property
    def unacknowledged(self) -> int:
        """Records received and not yet acknowledged (queued and in flight)."""
        return self._unacknowledged

    @property
    def put_count(self) -> int:
        """Records handed over so far (:meth:`put`, waiting ones included, and
        :meth:`put_nowait`): a mark for :meth:`acknowledged`."""
        return self._next_ticket

    @property
    def full(self) -> bool:
        """True while :meth:`put` would wait and :meth:`put_nowait` would refuse."""
        return self._unacknowledged >= self.capacity

    async def put(self, record: OutRecord) -> None:
        """Append ``record``; waits while the buffer is full.

        Cancelled while it waits (the daemon stops reading), it appends ``record`` all the
        same, over the capacity: the record was received, so it is flushed with the rest
        (or counted as not acknowledged), never lost unseen. The overshoot is at most one
        record per waiting put (one per upstream connection).
        """
        ticket = self._ticket()
        try:
            while self.full:
                self._writable.clear()
                await self._writable.wait()
        finally:
            self._append(ticket, record)

    def put_nowait(self, record: OutRecord) -> None:
        """Append ``record`` at once (no coroutine per record); raise
        :class:`asyncio.QueueFull` when the buffer is :attr:`full`."""
        if self.full:
            raise asyncio.QueueFull("record buffer full")
        self._append(self._ticket(), record)

    def _ticket(self) -> int:
        ticket = self._next_ticket
        self._next_ticket += 1
        self._pending.add(ticket)
        return ticket

    def _append(self, ticket: int, record: OutRecord) -> None:
        record.buffered_at = time.time()
        self._queue.append((ticket, record))
        self._unacknowledged += 1
        self._readable.set()

    async def take(self, limit: int) -> list[OutRecord]:
        """Remove and return up to ``limit`` records, oldest first; waits for one."""
        while not self._queue:
            self._readable.clear()
            await self._readable.wait()
        taken = [self._queue.popleft() for _ in range(min(limit, len(self._queue)))]
        self._taken.extend(ticket for ticket, _ in taken)
        return [record for _, record in taken]

    def acknowledge(self, count: int) -> None:
        """The ``count`` records taken first and not yet acknowledged are now in Kafka (or
        definitively handled): the sink acknowledges whole batches in the order it took them."""
        self._unacknowledged -= count
        for _ in range(count):
            self._pending.discard(self._taken.popleft())
        if self._unacknowledged < self.capacity:
            self._writable.set()
        self._settle()

    async def acknowledged(self, mark: int) -> None:
        """Wait until every record whose :meth:`put` started before ``mark`` (a
        :attr:`put_count`) is acknowledged, whatever was put after them."""
        if self._lowest_pending() >= mark:
            return
        future = asyncio.get_running_loop().create_future()
        self._marks.append((mark, future))
        await future

    async def drained(self) -> None:
        """Wait until every record put so far (waiting puts included) is acknowledged."""
        await self.acknowledged(self._next_ticket)

    def _lowest_pending(self) -> int:
        return min(self._pending, default=self._next_ticket)

    def _settle(self) -> None:
        """Wake the :meth:`acknowledged` waiters whose mark is reached."""
        if not self._marks:
            return
        lowest = self._lowest_pending()
        waiting = []
        for mark, future in self._marks:
            if future.done():  # the waiter gave up (a timeout): forget it
                continue
            if mark > lowest:
                waiting.append((mark, future))
            else:
                future.set_result(None)
        self._marks = waiting
