"""The records the memory buffer cannot hold: a short memory tail, written in batches to the
:class:`~ingester.produce.spool.log.SegmentLog` behind it, and read back in order.

The :class:`~ingester.produce.buffer.RecordBuffer` keeps one FIFO through memory, disk and
back: once a record goes to the overflow, every later one does too, until the overflow is
empty again, so the records the buffer holds in memory are always older than the spooled
ones. A burst that memory absorbs within :data:`_SPILL_AFTER` never touches the disk: the
tail goes straight back to memory as soon as there is room and nothing is spooled.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from ingester.observe.metrics import Metrics
from ingester.pipeline import OutRecord
from ingester.produce.spool.log import SegmentLog, SpoolFull
from ingester.produce.spool.records import from_payload, to_payload

__all__ = ["REPLAYED_HEADER", "SPOOL_AFTER_SECONDS", "DiskOverflow"]

log = logging.getLogger(__name__)

#: The header of a record produced from the spool for a match this replica does not follow
#: at that moment (docs/spool.md): a newer record of the match may be in the topic already.
REPLAYED_HEADER = ("replayed", b"1")
#: Kafka counts as not answering once the sink's round has waited this long for it (or
#: while there is no producer): rounds take milliseconds, a few hundred at saturation.
SPOOL_AFTER_SECONDS = 1.0
#: How often the tail is looked at, and how long a record may wait in it for room in
#: memory before it is written to disk while Kafka does not answer (a burst shorter than
#: that costs no disk).
_TICK = 0.05
_SPILL_AFTER = 0.1
#: The most records written to the log in one append.
_WRITE_BATCH = 2000


class DiskOverflow:
    """The tail and the log behind the buffer's memory; :meth:`run` writes and syncs.

    ``tail_limit`` bounds the tail (reading pauses when it is full and cannot be written).
    ``stalled()`` says whether Kafka stopped answering: the tail goes to disk only then, or
    behind what is there already. ``follows(record)`` says whether this replica follows the
    record's match now: a data record read from the log for a match it does not follow
    carries :data:`REPLAYED_HEADER`.
    """

    def __init__(
        self,
        store: SegmentLog,
        metrics: Metrics,
        *,
        tail_limit: int,
        sync_interval: float,
        follows: Callable[[OutRecord], bool],
        stalled: Callable[[], bool],
    ) -> None:
        self._log = store
        self._metrics = metrics
        self._tail: deque[OutRecord] = deque()
        self._tail_since = 0.0  # monotonic time the tail stopped being empty
        self.tail_limit = tail_limit
        self._sync_interval = sync_interval
        self._follows = follows
        self._stalled = stalled
        self._unsynced = False  # appended or released since the last sync
        self._write_error: str | None = None  # the last append's error, until one succeeds
        # Payloads read that could not be decoded are released with the records read
        # before them: how many good records precede each one, and how many are released.
        self._good_read = 0
        self._good_released = 0
        self._skips: deque[int] = deque()
        self._written = metrics.spool_records_written
        self._read = metrics.spool_records_read
        metrics.spool_capacity_bytes.set(store.max_bytes)
        self._report_damage()
        if store.records:
            log.warning(
                "the spool holds %d records (%d bytes) from an earlier run: they are produced"
                " before anything new",
                store.records,
                store.size,
            )

    @property
    def records(self) -> int:
        """Records in the log (read or not, not yet released)."""
        return self._log.records

    @property
    def pending(self) -> int:
        """Records in the memory tail, not yet written to the log."""
        return len(self._tail)

    @property
    def active(self) -> bool:
        """True while the overflow holds anything: new records must queue behind it."""
        return bool(self._tail) or self._log.records > 0

    @property
    def has_room(self) -> bool:
        """True while the tail takes another record (it empties into the log)."""
        return len(self._tail) < self.tail_limit

    def push(self, record: OutRecord) -> None:
        """Queue ``record`` behind everything the overflow holds."""
        tail = self._tail
        if not tail:
            self._tail_since = time.monotonic()
        tail.append(record)
        if len(tail) >= self.tail_limit and self._write_error is None and self._may_spill():
            self.spill()  # a full tail would pause reading: write it now, not at the tick

    def kafka_stalled(self) -> bool:
        """Whether Kafka has stopped answering: then new records go to the spool even while
        memory has room, so that a crash during an outage loses only what memory held
        before it was noticed."""
        return self._stalled()

    def _may_spill(self) -> bool:
        """Whether the tail may go to disk: while Kafka does not answer, or behind records
        already there. A Kafka that answers, only slower than records arrive (the daemon at
        saturation), gets backpressure instead: spooling would only add lag and disk work."""
        return self._log.records > 0 or self.kafka_stalled()

    def pause_reason(self) -> str:
        """Why the tail cannot take more, for the pause's log line."""
        if self._write_error is not None:
            return f"the spool refuses records: {self._write_error}"
        return "Kafka answers, slower than records arrive"

    def pull(self, limit: int) -> list[OutRecord]:
        """Up to ``limit`` of the oldest records, for memory: from the log while it has
        unread ones, else straight from the tail once the log is empty."""
        store = self._log
        if not store.unread and self._tail and store.records:
            self.spill()  # the tail queues behind records still in flight from the log
        while store.unread:
            records = self._read_log(limit)
            if records:  # else every payload read was undecodable: read on
                return records
        if store.records or not self._tail:
            return []
        tail = self._tail
        return [tail.popleft() for _ in range(min(limit, len(tail)))]

    def _read_log(self, limit: int) -> list[OutRecord]:
        payloads = self._log.read(limit)
        self._report_damage()
        records: list[OutRecord] = []
        now = time.time()
        for payload in payloads:
            try:
                record = from_payload(payload)
            except ValueError as exc:
                self._skips.append(self._good_read + len(records))
                self._metrics.spool_damaged_records.inc()
                log.error("spooled record skipped: it cannot be decoded (%s)", exc)
                continue
            record.spooled = True
            record.buffered_at = now
            if record.sport is not None and not self._follows(record):
                record.headers = [*record.headers, REPLAYED_HEADER]
                self._metrics.replayed_records.inc()
            records.append(record)
        self._good_read += len(records)
        self._read.inc(len(payloads))
        self._release_skips()
        return records

    def release(self, count: int) -> None:
        """``count`` records read from the log are in Kafka: the log can forget them."""
        self._good_released += count
        self._log.release(count)
        self._release_skips()
        self._unsynced = True

    def _release_skips(self) -> None:
        skips = self._skips
        released = 0
        while skips and skips[0] <= self._good_released:
            skips.popleft()
            released += 1
        if released:
            self._log.release(released)

    def spill(self) -> bool:
        """Write the tail to the log; ``False`` (the tail kept, counted and logged once) when
        the log refuses: full, or the disk fails."""
        tail = self._tail
        while tail:
            batch = [tail[i] for i in range(min(_WRITE_BATCH, len(tail)))]
            try:
                self._log.append([to_payload(r) for r in batch])
            except (SpoolFull, OSError) as exc:
                self._write_failed(exc)
                return False
            for _ in batch:
                tail.popleft()
            self._written.inc(len(batch))
            self._unsynced = True
        if self._write_error is not None:
            log.warning("the spool takes records again (after: %s)", self._write_error)
            self._write_error = None
        return True

    def _write_failed(self, exc: SpoolFull | OSError) -> None:
        if isinstance(exc, SpoolFull):
            kind = "full"
        else:
            kind = errno.errorcode.get(exc.errno or 0, type(exc).__name__)
        self._metrics.spool_write_errors.labels(error=kind).inc()
        message = f"{kind}: {exc}"
        if self._write_error is None:
            log.error(
                "the spool refuses records (%s): %d wait in memory; reading pauses when %d do",
                message,
                len(self._tail),
                self.tail_limit,
            )
        self._write_error = message

    async def run(self, wake: Callable[[], None]) -> None:
        """Write a tail that waited :data:`_SPILL_AFTER` for memory, and sync the log every
        ``sync_interval`` in a worker thread; ``wake`` the buffer after a write (its puts
        may have room again, its sink something to read)."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self._sync_forever())
            while True:
                await asyncio.sleep(_TICK)
                waited = time.monotonic() - self._tail_since
                if (
                    self._tail
                    and (waited >= _SPILL_AFTER or not self.has_room)
                    and self._may_spill()
                ):
                    self.spill()
                    wake()

    async def _sync_forever(self) -> None:
        while True:
            await asyncio.sleep(self._sync_interval)
            if self._unsynced:
                self._unsynced = False
                try:
                    await asyncio.to_thread(self._log.sync)
                except OSError as exc:
                    self._unsynced = True  # tried again at the next interval
                    self._write_failed(exc)

    def _report_damage(self) -> None:
        for damage in self._log.take_damage():
            self._metrics.spool_damage.labels(kind=damage.kind).inc()
            self._metrics.spool_damaged_records.inc(damage.records)
            log.error(
                "spool damage (%s) in %s: %s; %d bytes skipped",
                damage.kind,
                damage.segment,
                damage.detail,
                damage.skipped_bytes,
            )

    def persist(self, in_memory: Sequence[OutRecord]) -> int:
        """At shutdown: put ``in_memory`` (the buffer's records not from the log, older than
        everything in it) before the log's content and the tail after it, sync, close;
        returns the records the log then holds. ``OSError`` or :class:`SpoolFull` when the
        disk refuses (what could not be written is lost: the caller says so)."""
        store = self._log
        store.rewind()
        if in_memory:
            store.prepend([to_payload(r) for r in in_memory])
        if self._tail and not self.spill():
            raise OSError(self._write_error)
        kept = store.records
        store.close()
        return kept

    def publish_gauges(self) -> None:
        """Bring the spool's gauges up to date."""
        store, metrics = self._log, self._metrics
        metrics.spool_bytes.set(store.size)
        metrics.spool_records.set(store.records)
        oldest = store.oldest_appended_at
        metrics.spool_oldest_record_age_seconds.set(0.0 if oldest is None else time.time() - oldest)

    def describe(self) -> dict[str, Any]:
        """The spool in ``/status``: the log's figures, the tail, the last write error."""
        return {
            **self._log.describe(),
            "in_memory_tail": len(self._tail),
            "write_error": self._write_error,
        }
