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
        self._readable = asyncio.Event()
        self._writable = asyncio.Event()
        self._writable.set()
        self._drained = asyncio.Event()
        self._drained.set()

    @property
    def unacknowledged(self) -> int:
        """Records received and not yet acknowledged (queued and in flight)."""
        return self._unacknowledged

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
        self._readable.set()
        self._drained.clear()

    async def take(self, limit: int) -> list[OutRecord]:
        """Remove and return up to ``limit`` records, oldest first; waits for one."""
        while not self._queue:
            self._readable.clear()
            await self._readable.wait()
        count = min(limit, len(self._queue))
        return [self._queue.popleft() for _ in range(count)]

    def acknowledge(self, count: int) -> None:
        """``count`` taken records are now in Kafka (or definitively handled)."""
        self._unacknowledged -= count
        if self._unacknowledged < self.capacity:
            self._writable.set()
        if self._unacknowledged == 0:
            self._drained.set()

    async def drained(self) -> None:
        """Wait until every record put so far has been acknowledged."""
        await self._drained.wait()
