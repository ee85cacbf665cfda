"""The bounded buffer between the upstream readers and the Kafka sink.

Memory holds at most ``capacity`` records received and not yet acknowledged by Kafka
(queued plus in flight), whatever Kafka does. Past that, records go to the disk spool when
there is one (:class:`~ingester.produce.spool.overflow.DiskOverflow`): one FIFO runs through
memory, disk and back, so the order of the records, and so of each match's, holds. When
there is no room left anywhere, :meth:`put` waits (and :meth:`put_nowait` refuses): the
upstream readers stop reading and TCP pushes back on the server (backpressure). A record
handed to :meth:`put` is never abandoned, even when the wait is cancelled.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque

from ingester.observe.metrics import Metrics
from ingester.pipeline import OutRecord
from ingester.produce.spool.overflow import DiskOverflow

__all__ = ["RecordBuffer"]

log = logging.getLogger(__name__)

#: Seconds between two ``reading paused`` lines (every pause is counted).
_PAUSE_LOG_INTERVAL = 60.0


class RecordBuffer:
    """FIFO of :class:`OutRecord` with a capacity on the records it holds in memory.

    With an ``overflow``, the capacity is shared: its tail (records on their way to disk)
    takes up to ``overflow.tail_limit`` of it, the queue and the records in flight the rest.

    Every :meth:`put` or :meth:`put_nowait` takes a ticket when it starts, also a ``put`` that
    then waits for room, so :meth:`drained` can wait for exactly the records handed over
    before it is called, whatever order the waiting ones end up queued in. The sink
    acknowledges in the order it took, which is the FIFO's: a record is acknowledged once as
    many records as its position in the FIFO are, so nothing per record is kept for it (a
    spool of a million records costs no memory here).
    """

    def __init__(
        self,
        capacity: int,
        overflow: DiskOverflow | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.capacity = capacity
        self._overflow = overflow
        # The queue's and the in-flight records' share of the capacity.
        self._limit = max(1, capacity - overflow.tail_limit) if overflow else capacity
        self._pauses = metrics.upstream_pauses if metrics is not None else None
        self._paused = False  # a put is waiting for room
        self._pause_logged_at = -_PAUSE_LOG_INTERVAL  # monotonic time of the last pause line
        self._unlogged_pauses = 0
        self._queue: deque[OutRecord] = deque()
        self._taken: deque[OutRecord] = deque()  # taken by the sink, not yet acknowledged
        self._next_ticket = 0
        self._waiting: set[int] = set()  # tickets of the puts waiting for room
        # FIFO positions: records in it so far (a previous run's spool first), and acknowledged.
        self._appended = overflow.records if overflow is not None else 0
        self._acknowledged = 0
        self._readable = asyncio.Event()
        self._writable = asyncio.Event()
        self._writable.set()
        # drained() waiters: [mark, the FIFO position to reach (None until every put
        # before the mark is in the FIFO), future]
        self._marks: list[tuple[int, int | None, asyncio.Future[None]]] = []

    @property
    def unacknowledged(self) -> int:
        """Records received and not yet acknowledged (in memory, in flight and spooled)."""
        return self._appended - self._acknowledged

    @property
    def in_memory(self) -> int:
        """Records held in memory: queued, in flight, and waiting to be spooled."""
        overflow = self._overflow
        return len(self._queue) + len(self._taken) + (overflow.pending if overflow else 0)

    @property
    def full(self) -> bool:
        """True while :meth:`put` would wait and :meth:`put_nowait` would refuse."""
        overflow = self._overflow
        memory_room = len(self._queue) + len(self._taken) < self._limit
        if memory_room and (overflow is None or not overflow.active):
            return False
        return overflow is None or not overflow.has_room

    async def put(self, record: OutRecord) -> None:
        """Append ``record``; waits while the buffer is full.

        Cancelled while it waits (the daemon stops reading), it appends ``record`` all the
        same, over the capacity: the record was received, so it is flushed with the rest
        (or counted as not acknowledged), never lost unseen. The overshoot is at most one
        record per waiting put (one per upstream connection).
        """
        ticket = self._next_ticket
        self._next_ticket += 1
        if self.full:
            self._waiting.add(ticket)
            self._pause()
            try:
                while self.full:
                    self._writable.clear()
                    await self._writable.wait()
            finally:
                self._waiting.discard(ticket)
                self._append(record)
                self._fix_marks()
            return
        self._append(record)

    def put_nowait(self, record: OutRecord) -> None:
        """Append ``record`` at once (no coroutine per record); raise
        :class:`asyncio.QueueFull` when the buffer is :attr:`full`."""
        if self.full:
            raise asyncio.QueueFull("record buffer full")
        self._next_ticket += 1
        self._append(record)

    def _append(self, record: OutRecord) -> None:
        record.buffered_at = time.time()
        overflow = self._overflow
        if overflow is not None and (
            overflow.active
            or len(self._queue) + len(self._taken) >= self._limit
            or overflow.kafka_stalled()  # to disk at once: a crash then loses no more
        ):
            overflow.push(record)  # behind what is spooled: the FIFO's order holds
        else:
            self._queue.append(record)
        self._appended += 1
        self._readable.set()

    def _pause(self) -> None:
        """A put waits for room: reading from the upstream pauses (counted; logged at most
        once a minute, as backpressure at saturation pauses many times a second)."""
        if self._paused:
            return
        self._paused = True
        self._unlogged_pauses += 1
        if self._pauses is not None:
            self._pauses.inc()
        now = time.monotonic()
        if now - self._pause_logged_at < _PAUSE_LOG_INTERVAL:
            return
        log.warning(
            "reading paused: %d records held in memory (%s)%s",
            self.in_memory,
            "no spool" if self._overflow is None else self._overflow.pause_reason(),
            ""
            if self._unlogged_pauses == 1
            else f"; {self._unlogged_pauses} pauses since the last such line",
        )
        self._pause_logged_at = now
        self._unlogged_pauses = 0

    async def take(self, limit: int) -> list[OutRecord]:
        """Remove and return up to ``limit`` records, oldest first; waits for one."""
        while True:
            self._refill(limit)
            if self._queue:
                break
            self._readable.clear()
            await self._readable.wait()
        queue = self._queue
        taken = [queue.popleft() for _ in range(min(limit, len(queue)))]
        self._taken.extend(taken)
        return taken

    def _refill(self, limit: int) -> None:
        """Bring up to ``limit`` records from the spool into memory while there is room."""
        overflow = self._overflow
        if overflow is None or not overflow.active:
            return
        room = min(limit - len(self._queue), self._limit - len(self._queue) - len(self._taken))
        if room > 0:
            self._queue.extend(overflow.pull(room))
            self._room_made()

    def acknowledge(self, count: int) -> None:
        """The ``count`` records taken first and not yet acknowledged are now in Kafka (or
        definitively handled): the sink acknowledges whole batches in the order it took them."""
        taken = self._taken
        spooled = 0
        for _ in range(count):
            spooled += taken.popleft().spooled
        if spooled:
            assert self._overflow is not None  # only the spool makes spooled records
            self._overflow.release(spooled)
        self._acknowledged += count
        self._room_made()
        self._settle()

    def _room_made(self) -> None:
        if not self.full:
            self._paused = False
            self._writable.set()

    def wake(self) -> None:
        """The spool moved records (written to disk, or found room): wake a waiting
        :meth:`take` and the waiting puts."""
        self._readable.set()
        self._room_made()

    async def drained(self) -> None:
        """Wait until every record handed over so far (waiting puts included) is
        acknowledged, whatever is put after the call."""
        future = asyncio.get_running_loop().create_future()
        mark = self._next_ticket
        self._marks.append((mark, self._position_of(mark), future))
        self._settle()
        await future

    def _position_of(self, mark: int) -> int | None:
        """The FIFO position that covers every put before ``mark``; ``None`` while one of
        them still waits for room (its position is not known yet)."""
        if any(ticket < mark for ticket in self._waiting):
            return None
        return self._appended

    def _fix_marks(self) -> None:
        """A waiting put got in: the marks that were waiting for it know their position."""
        self._marks = [
            (mark, self._position_of(mark) if position is None else position, future)
            for mark, position, future in self._marks
        ]
        self._settle()

    def _settle(self) -> None:
        """Wake the :meth:`acknowledged` waiters whose position is reached."""
        if not self._marks:
            return
        waiting = []
        for mark, position, future in self._marks:
            if future.done():  # the waiter gave up (a timeout): forget it
                continue
            if position is None or position > self._acknowledged:
                waiting.append((mark, position, future))
            else:
                future.set_result(None)
        self._marks = waiting

    def persist(self) -> int:
        """At shutdown, with the sink stopped: write every record not acknowledged to the
        spool, in FIFO order, for the next start to deliver first; returns how many are
        in it. Without a spool, nothing (0)."""
        if self._overflow is None:
            return 0
        in_memory = [r for r in (*self._taken, *self._queue) if not r.spooled]
        return self._overflow.persist(in_memory)
