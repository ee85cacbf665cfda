"""The bounded buffer between the upstream readers and the Kafka sink.

Capacity counts every record received and not yet acknowledged by Kafka (queued plus in
flight), so memory stays bounded whatever Kafka does. When it is full, :meth:`put` waits:
the upstream readers stop reading, and TCP pushes back on the server (backpressure).
"""

from __future__ import annotations

import asyncio
from collections import deque

from ingester.pipeline import OutRecord

__all__ = ["RecordBuffer"]


class RecordBuffer:
    """FIFO of :class:`OutRecord` with a capacity on records not yet acknowledged."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._queue: deque[OutRecord] = deque()
        self._unacknowledged = 0
        self._put = 0
        self._acknowledged = 0
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
        """Records put so far: a mark for :meth:`acknowledged`."""
        return self._put

    @property
    def full(self) -> bool:
        """True while :meth:`put` would wait."""
        return self._unacknowledged >= self.capacity

    async def put(self, record: OutRecord) -> None:
        """Append ``record``; waits while the buffer is full."""
        while self._unacknowledged >= self.capacity:
            self._writable.clear()
            await self._writable.wait()
        self._queue.append(record)
        self._unacknowledged += 1
        self._put += 1
        self._readable.set()

    async def take(self, limit: int) -> list[OutRecord]:
        """Remove and return up to ``limit`` records, oldest first; waits for one."""
        while not self._queue:
            self._readable.clear()
            await self._readable.wait()
        count = min(limit, len(self._queue))
        return [self._queue.popleft() for _ in range(count)]

    def acknowledge(self, count: int) -> None:
        """The ``count`` oldest unacknowledged records are now in Kafka (or definitively
        handled): the sink acknowledges whole batches in the order it took them."""
        self._unacknowledged -= count
        self._acknowledged += count
        if self._unacknowledged < self.capacity:
            self._writable.set()
        if self._marks:
            waiting = []
            for mark, future in self._marks:
                if future.done():  # the waiter gave up (a timeout): forget it
                    continue
                if mark > self._acknowledged:
                    waiting.append((mark, future))
                else:
                    future.set_result(None)
            self._marks = waiting

    async def acknowledged(self, mark: int) -> None:
        """Wait until the first ``mark`` records ever put (see :attr:`put_count`) are
        acknowledged, whatever was put after them."""
        if self._acknowledged >= mark:
            return
        future = asyncio.get_running_loop().create_future()
        self._marks.append((mark, future))
        await future

    async def drained(self) -> None:
        """Wait until every record put so far has been acknowledged."""
        await self.acknowledged(self._put)
