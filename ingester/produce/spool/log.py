"""An append-only, crash-safe log of byte payloads in segment files (the spool's store).

The directory holds:

- ``LOCK``: an exclusive ``flock`` while a :class:`SegmentLog` has the directory open;
- ``NNNNNNNNNNNNNNNNNNNN.seg``: the segments, read in the order of their 20-digit numbers,
  each a run of :mod:`.framing` frames. Numbers start at 2**63 and grow by one per segment;
  :meth:`SegmentLog.prepend` takes the number below the oldest. A segment is closed for
  appends once the next batch would take it past ``segment_bytes`` (16 MiB by default: a
  1 GiB spool is 64 files and as many small objects in memory, deleting a released one gives
  back 16 MiB at once, and a damaged one costs at most 16 MiB);
- ``cursor``: the persisted read position, the segment and byte offset of the oldest payload
  held (and the segment a :meth:`SegmentLog.prepend` copied, if any), in two 64-byte slots
  written in turn (a counter and a CRC each; the valid slot with the higher counter wins), so
  the update on every :meth:`SegmentLog.release` is one ``pwrite`` that a crash cannot leave
  half-done.

Files are read in chunks of 1 MiB (a whole frame when larger), at open and by
:meth:`SegmentLog.read`.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import struct
import threading
import time
import zlib
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any, Literal

from ingester.produce.spool.framing import (
    HEADER_SIZE,
    MAX_PAYLOAD,
    FrameScanner,
    Outcome,
    encode_frames,
    frame_header,
)

__all__ = ["Damage", "SegmentLog", "SpoolError", "SpoolFull"]

log = logging.getLogger(__name__)

_FIRST_SEGMENT = 1 << 63
_SEGMENT_NAME = re.compile(r"^(\d{20})\.seg$")
_SLOT = struct.Struct("<QQQQ")  # counter, segment, offset, superseded segment (0: none)
_SLOT_SIZE = 64
_READ_CHUNK = 1 << 20
_PROBE = b"sportrix-ingester spool write probe\n" * 100


class SpoolError(Exception):
    """The spool directory cannot be used: missing and not creatable, not a directory, not
    writable, or locked by another running daemon. Raised by :class:`SegmentLog` at open;
    the daemon exits 2 naming ``INGESTER_SPOOL_DIR``."""


class SpoolFull(Exception):
    """:meth:`SegmentLog.append` refused: the payloads would take the log past ``max_bytes``.
    Nothing was written."""


@dataclass(frozen=True)
class Damage:
    """Part of the log found unreadable (at open or while reading) and skipped.

    ``torn_record``: the last frame of the newest segment is incomplete or fails its
    checksum (a crash during a write); it is truncated away. ``corrupt_segment``: a frame
    inside a segment fails its checksum or its length makes no sense; the rest of that
    segment is skipped. ``records`` is how many frames are known to be lost (0 when unknown)
    and ``skipped_bytes`` how many bytes were given up.
    """

    kind: Literal["torn_record", "corrupt_segment"]
    segment: str  # the segment file's name
    detail: str  # one line, for the log
    skipped_bytes: int
    records: int = 0


class _Segment:
    """One segment file: its held frames are the bytes ``start``..``end`` (``start`` is
    above 0 only for the oldest, partly released), ``count`` of them."""

    __slots__ = ("count", "end", "fd", "path", "seq", "start")

    def __init__(self, seq: int, path: Path, start: int, end: int, count: int, fd: int) -> None:
        self.seq = seq
        self.path = path
        self.start = start
        self.end = end
        self.count = count
        self.fd = fd  # the open file while it takes appends (or until it is synced), else -1


class _SegmentScan:
    """The frames of one segment file from an offset on, read in chunks: the file side of
    :class:`FrameScanner`. After :meth:`frames` stopped, :attr:`outcome` says why."""

    def __init__(self, fd: int, offset: int) -> None:
        self.fd = fd
        self.offset = offset  # the end of the last good frame
        self.outcome: Outcome | None = None
        self.detail = ""
        self._buffer = b""
        self._at = offset  # the file offset of the buffer's first byte

    def frames(self, end: int) -> Iterator[tuple[memoryview, float]]:
        """``(payload, appended_at)`` of the frames up to byte ``end``; the payloads are
        valid until the next call."""
        self.outcome = None
        short = False
        while True:
            begin = self.offset - self._at
            scanner = FrameScanner(memoryview(self._buffer)[begin : end - self._at])
            for frame in scanner:
                self.offset = self._at + begin + scanner.offset
                yield frame
            self.offset = self._at + begin + scanner.offset
            if self._at + len(self._buffer) >= end:
                self.outcome = scanner.outcome
                self.detail = scanner.detail
                if short and scanner.outcome is Outcome.CLEAN:
                    self.outcome = Outcome.TORN
                    self.detail = "the file ends early"
                return
            header = frame_header(self._buffer, self.offset - self._at)
            buffered = self._at + len(self._buffer)
            if scanner.outcome is Outcome.CLEAN or header is None:
                want = _READ_CHUNK  # the buffer ends between frames or in a header
            elif header[0] <= MAX_PAYLOAD and buffered < self.offset + header[0] <= end:
                want = max(_READ_CHUNK, header[0])  # a frame across the buffer's end
            else:
                want = end - self.offset  # damage: classified on everything after it
            want = min(want, end - self.offset)
            self._buffer = os.pread(self.fd, want, self.offset)
            self._at = self.offset
            if len(self._buffer) < want:  # the file is shorter than said
                short = True
                end = self._at + len(self._buffer)


class SegmentLog:
    """Payloads appended in order to segment files in ``directory``, read back oldest
    first, and released once delivered; survives ``kill -9`` (everything :meth:`append`
    returned for is in the OS page cache) and, after :meth:`sync`, power loss.

    Open (the constructor) creates ``directory`` if needed, takes an exclusive lock on it
    (``fcntl.flock`` on a lock file: a second daemon on the same spool is a
    :class:`SpoolError`), proves it writable, reads the persisted read position and scans
    the segments (torn tail truncated, damage kept for :meth:`take_damage`). Memory use is
    O(segments), never O(records) (plus one entry per payload read and not yet released).
    Every method is synchronous and meant for the event loop (page-cache I/O, fast) except
    :meth:`sync`, which blocks on ``fsync`` and is run in a worker thread while the loop
    keeps appending, reading and releasing.
    """

    def __init__(
        self, directory: Path, max_bytes: int, *, segment_bytes: int = 16 * 1024 * 1024
    ) -> None:
        self._directory = directory
        self._max_bytes = max_bytes
        self._segment_bytes = segment_bytes
        self._segments: list[_Segment] = []
        self._writer: _Segment | None = None  # the newest segment, while it takes appends
        self._next_seq = _FIRST_SEGMENT
        self._records = 0
        self._size = 0
        self._damage: list[Damage] = []
        # Read and not released: (segment, end of the frame, appended_at), oldest first.
        self._inflight: deque[tuple[_Segment, int, float]] = deque()
        self._reading: _Segment | None = None
        self._scan = _SegmentScan(-1, 0)
        self._oldest: float | None = None  # the head's append time, once looked up
        self._cursor_counter = 0
        self._superseded = 0  # a segment a prepend copied, deleted at open if still there
        # What sync() does next, handed over under _lock: files written since the last sync
        # (closed by sync, never by the loop, so an fsync never meets a closed fd).
        self._lock = threading.Lock()
        self._sync_lock = threading.Lock()  # one sync at a time, and close after it
        self._unsynced: list[int] = []
        self._writer_dirty = False
        self._cursor_dirty = False
        self._directory_dirty = False
        self._closed = False
        self._lock_fd = self._cursor_fd = -1
        try:
            self._open()
        except BaseException:
            self._closed = True
            for fd in (self._lock_fd, self._cursor_fd):
                if fd >= 0:
                    os.close(fd)
            raise

    @property
    def records(self) -> int:
        """Payloads held: appended and not yet released (read or not)."""
        return self._records

    @property
    def unread(self) -> int:
        """Payloads held and not yet returned by :meth:`read`."""
        return self._records - len(self._inflight)

    @property
    def size(self) -> int:
        """Bytes the held payloads take on disk (framing included; counts against
        ``max_bytes``)."""
        return self._size

    @property
    def max_bytes(self) -> int:
        """The bound given at open."""
        return self._max_bytes

    @property
    def oldest_appended_at(self) -> float | None:
        """Wall-clock time (``time.time()``) the oldest held payload was appended; ``None``
        when empty. Kept in each frame's header, so it survives a restart."""
        if not self._records:
            return None
        if self._inflight:
            return self._inflight[0][2]
        if self._oldest is None:
            self._oldest = self._head_time()
        return self._oldest

    def take_damage(self) -> list[Damage]:
        """The damage found since the last call (at open, then by :meth:`read`), oldest
        first: the caller logs and counts each."""
        damage, self._damage = self._damage, []
        return damage

    def append(self, payloads: Sequence[bytes]) -> None:
        """Append ``payloads`` after everything held, in order; all or nothing.

        Raises :class:`SpoolFull` (nothing written) when they do not fit in ``max_bytes``,
        and ``OSError`` (disk full ``ENOSPC``, file too large ``EFBIG``, I/O error) when the
        write fails: then whatever part was written is truncated away and the log stays
        usable, holding exactly what it held before the call.
        """
        if not payloads:
            return
        data = self._frames(payloads)
        writer = self._writer
        if writer is not None and writer.end + len(data) <= self._segment_bytes:
            try:
                _write_all(writer.fd, data, writer.end)
            except OSError:
                _truncate(writer.fd, writer.end)
                raise
        else:
            writer = self._new_segment(self._next_seq, data)
            with self._lock:
                if self._writer is not None:
                    self._unsynced.append(self._writer.fd)
                    self._writer.fd = -1
                self._writer = writer
            self._segments.append(writer)
            self._next_seq += 1
        with self._lock:
            self._writer_dirty = True
        writer.end += len(data)
        writer.count += len(payloads)
        self._records += len(payloads)
        self._size += len(data)

    def prepend(self, payloads: Sequence[bytes]) -> None:
        """Put ``payloads`` before everything held (a new oldest segment): at shutdown, the
        records still in memory that are older than the log's content. Read next, before
        the rest; same errors as :meth:`append`. Only called with nothing read and not
        released (``unread == records``)."""
        if self._inflight:
            raise RuntimeError("prepend with payloads read and not released")
        if not self._segments:
            self.append(payloads)
            return
        if not payloads:
            return
        data = self._frames(payloads)
        head = self._segments[0]
        # A partly released head is copied behind the payloads (only the oldest segment may
        # start past its first byte); the cursor names the copy and the head it supersedes
        # in one write, so a crash leaves either the old state or the new one.
        kept = b""
        if head.start:
            fd = os.open(head.path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                kept = os.pread(fd, head.end - head.start, head.start)
            finally:
                os.close(fd)
        segment = self._new_segment(head.seq - 1, data + kept)
        segment.end = len(data) + len(kept)
        segment.count = len(payloads) + (head.count if kept else 0)
        superseded = head.seq if kept else self._superseded
        try:
            self._write_cursor(segment.seq, 0, superseded)
        except OSError:
            os.close(segment.fd)
            _unlink(segment.path)
            raise
        self._superseded = superseded
        with self._lock:
            if kept and head is self._writer:
                self._unsynced.append(head.fd)
                head.fd = -1
                self._writer = segment
            else:
                self._unsynced.append(segment.fd)
                segment.fd = -1
            self._writer_dirty = True
        if kept:
            _unlink(head.path)
            self._segments[0] = segment
        else:
            self._segments.insert(0, segment)
        self._records += len(payloads)
        self._size += len(data)
        self._oldest = None
        self.rewind()

    def read(self, limit: int) -> list[bytes]:
        """Up to ``limit`` payloads after those already read, oldest first (``[]`` when
        none are unread). A corrupt frame ends its segment's reading: recorded as
        :class:`Damage` and the next segment follows."""
        out: list[bytes] = []
        while len(out) < limit:
            segment = self._reading
            scan = self._scan
            if segment is None or scan.offset >= segment.end:
                following = self._following(segment)
                if following is None:
                    break
                self._start_reading(following)
                continue
            for payload, appended_at in islice(scan.frames(segment.end), limit - len(out)):
                out.append(bytes(payload))
                self._inflight.append((segment, scan.offset, appended_at))
            if scan.outcome is Outcome.TORN or scan.outcome is Outcome.CORRUPT:
                self._cut(segment, scan)
        return out

    def release(self, count: int) -> None:
        """The ``count`` oldest payloads read and not yet released are delivered: move the
        persisted read position past them and delete the segments wholly released. A
        restart delivers again what was read and not released (at-least-once)."""
        if count <= 0:
            return
        if count > len(self._inflight):
            raise ValueError(f"release({count}) with {len(self._inflight)} payloads read")
        segment, offset, _ = self._inflight[count - 1]
        index = next(i for i, s in enumerate(self._segments) if s is segment)
        if self._records == count:
            gone = self._segments
            position = (self._next_seq, 0)
        elif offset == segment.end and segment is not self._writer:
            gone = self._segments[: index + 1]
            position = (self._segments[index + 1].seq, self._segments[index + 1].start)
        else:
            gone = self._segments[:index]
            position = (segment.seq, offset)
        self._write_cursor(*position, self._superseded)
        for _ in range(count):
            self._inflight.popleft()[0].count -= 1
        self._records -= count
        self._segments = self._segments[len(gone) :]
        if self._segments and position[1]:
            self._segments[0].start = position[1]
        self._delete(gone)
        self._size = sum(s.end - s.start for s in self._segments)
        self._oldest = None

    def rewind(self) -> None:
        """Forget what was read and not released: the next :meth:`read` starts again at
        the oldest held payload (what a restart would do)."""
        self._inflight.clear()
        self._stop_reading()

    def sync(self) -> None:
        """``fsync`` what was appended and the read position (and the directory after a
        segment was created or deleted): after it returns, a power loss loses nothing held
        before the call. Blocking; safe to run in a worker thread while the event loop uses
        the other methods."""
        with self._sync_lock:
            if self._closed:
                return
            with self._lock:
                files, self._unsynced = self._unsynced, []
                writer = self._writer.fd if self._writer and self._writer_dirty else -1
                cursor = self._cursor_fd if self._cursor_dirty else -1
                directory = self._directory_dirty
                self._writer_dirty = self._cursor_dirty = self._directory_dirty = False
            try:
                for fd in [*files, writer, cursor]:
                    if fd >= 0:
                        os.fdatasync(fd)
                if directory:
                    _fsync_directory(self._directory)
            finally:
                for fd in files:
                    os.close(fd)

    def describe(self) -> dict[str, Any]:
        """What ``/status`` shows: directory, records, unread, size (bytes), max_bytes,
        segments, oldest record's age in seconds."""
        oldest = self.oldest_appended_at
        return {
            "directory": str(self._directory),
            "records": self._records,
            "unread": self.unread,
            "size": self._size,
            "max_bytes": self._max_bytes,
            "segments": len(self._segments),
            "oldest_age_seconds": None if oldest is None else max(0.0, time.time() - oldest),
        }

    def close(self) -> None:
        """Sync, then release the files and the directory lock."""
        if self._closed:
            return
        try:
            self.sync()
        finally:
            self._stop_reading()
            with self._sync_lock, self._lock:
                self._closed = True
                writer = self._writer.fd if self._writer else -1
                for fd in [*self._unsynced, writer, self._cursor_fd, self._lock_fd]:
                    if fd >= 0:
                        os.close(fd)
                self._unsynced = []

    # Opening and recovery.

    def _open(self) -> None:
        directory = self._directory
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except FileExistsError:
            raise SpoolError(f"spool directory {directory} is not a directory") from None
        except OSError as error:
            raise SpoolError(f"spool directory {directory} cannot be created: {error}") from None
        if not directory.is_dir():
            raise SpoolError(f"spool directory {directory} is not a directory")
        try:
            self._lock_fd = os.open(directory / "LOCK", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC)
        except OSError as error:
            raise SpoolError(f"spool directory {directory} is not writable: {error}") from None
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SpoolError(
                f"spool directory {directory} is in use by another process (LOCK is held)"
            ) from None
        except OSError as error:
            raise SpoolError(f"spool directory {directory} cannot be locked: {error}") from None
        try:
            _probe(directory)
            self._cursor_fd = os.open(
                directory / "cursor", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644
            )
        except OSError as error:
            raise SpoolError(f"spool directory {directory} is not writable: {error}") from None
        try:
            self._recover()
        except OSError as error:
            raise SpoolError(f"spool directory {directory} cannot be read: {error}") from None

    def _recover(self) -> None:
        found = sorted(
            int(match.group(1))
            for name in os.listdir(self._directory)
            if (match := _SEGMENT_NAME.match(name))
        )
        cursor = self._read_cursor()
        if cursor is None:
            if os.fstat(self._cursor_fd).st_size:
                log.warning("spool: the read position is unreadable; delivering everything again")
            cursor = (found[0] if found else _FIRST_SEGMENT, 0, 0)
        seq, offset, superseded = cursor
        for number in found:
            path = self._path(number)
            if number < seq or number == superseded:
                _unlink(path)  # released, or copied by a prepend
                continue
            start = offset if number == seq else 0
            segment = self._scan_segment(path, number, start, last=number == found[-1])
            if segment.count:
                self._segments.append(segment)
            else:
                _unlink(path)
        self._superseded = 0
        self._next_seq = max([*found, seq - 1]) + 1
        self._records = sum(s.count for s in self._segments)
        self._size = sum(s.end - s.start for s in self._segments)
        head = self._segments[0] if self._segments else None
        position = (head.seq, head.start, 0) if head else (self._next_seq, 0, 0)
        if position != cursor:
            self._write_cursor(*position)
        with self._lock:
            self._directory_dirty = True

    def _scan_segment(self, path: Path, seq: int, start: int, *, last: bool) -> _Segment:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        try:
            size = os.fstat(fd).st_size
            scan = _SegmentScan(fd, start)
            count = sum(1 for _ in scan.frames(size))
            if scan.outcome is not Outcome.CLEAN:
                torn = scan.outcome is Outcome.TORN and last
                self._damage.append(
                    Damage(
                        "torn_record" if torn else "corrupt_segment",
                        path.name,
                        f"{path.name}: {scan.detail} at byte {scan.offset}; "
                        f"{size - scan.offset} bytes dropped",
                        size - scan.offset,
                        1 if torn else 0,
                    )
                )
                os.ftruncate(fd, scan.offset)
                os.fsync(fd)
            return _Segment(seq, path, start, scan.offset, count, -1)
        finally:
            os.close(fd)

    # The read position.

    def _read_cursor(self) -> tuple[int, int, int] | None:
        data = os.pread(self._cursor_fd, 2 * _SLOT_SIZE, 0)
        best: tuple[int, int, int, int] | None = None
        for at in (0, _SLOT_SIZE):
            slot = data[at : at + _SLOT.size + 4]
            if len(slot) < _SLOT.size + 4:
                continue
            if zlib.crc32(slot[: _SLOT.size]) != int.from_bytes(slot[_SLOT.size :], "little"):
                continue
            counter, seq, offset, superseded = _SLOT.unpack_from(slot)
            if best is None or counter > best[0]:
                best = (counter, seq, offset, superseded)
        if best is None:
            return None
        self._cursor_counter = best[0]
        self._superseded = best[3]
        return best[1], best[2], best[3]

    def _write_cursor(self, seq: int, offset: int, superseded: int) -> None:
        counter = self._cursor_counter + 1
        slot = _SLOT.pack(counter, seq, offset, superseded)
        os.pwrite(
            self._cursor_fd,
            slot + zlib.crc32(slot).to_bytes(4, "little"),
            (counter % 2) * _SLOT_SIZE,
        )
        self._cursor_counter = counter
        with self._lock:
            self._cursor_dirty = True

    # Segments.

    def _path(self, seq: int) -> Path:
        return self._directory / f"{seq:020d}.seg"

    def _frames(self, payloads: Sequence[bytes]) -> bytes:
        data = encode_frames(payloads, time.time())
        if self._size + len(data) > self._max_bytes:
            raise SpoolFull(
                f"{len(payloads)} records ({len(data)} bytes) do not fit: "
                f"{self._size} of {self._max_bytes} bytes used"
            )
        return data

    def _new_segment(self, seq: int, data: bytes) -> _Segment:
        """A new segment file holding ``data``; nothing is left behind if it fails."""
        path = self._path(seq)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        try:
            _write_all(fd, data, 0)
        except OSError:
            os.close(fd)
            _unlink(path)
            raise
        with self._lock:
            self._directory_dirty = True
        return _Segment(seq, path, 0, 0, 0, fd)

    def _delete(self, segments: list[_Segment]) -> None:
        if not segments:
            return
        with self._lock:
            for segment in segments:
                if segment.fd >= 0:
                    self._unsynced.append(segment.fd)  # sync() closes it
                    segment.fd = -1
                if segment is self._writer:
                    self._writer = None
            self._directory_dirty = True
        for segment in segments:
            if segment is self._reading:
                self._stop_reading()
            _unlink(segment.path)

    def _cut(self, segment: _Segment, scan: _SegmentScan) -> None:
        """Damage met while reading: the rest of ``segment`` is given up."""
        read = sum(1 for entry in self._inflight if entry[0] is segment)
        lost = segment.count - read
        skipped = segment.end - scan.offset
        self._damage.append(
            Damage(
                "corrupt_segment",
                segment.path.name,
                f"{segment.path.name}: {scan.detail} at byte {scan.offset}; "
                f"{lost} records, {skipped} bytes skipped",
                skipped,
                lost,
            )
        )
        if segment is self._writer:  # appends go on in a new segment
            with self._lock:
                self._unsynced.append(segment.fd)
                segment.fd = -1
                self._writer = None
        _truncate_path(segment.path, scan.offset)
        segment.end = scan.offset
        segment.count = read
        self._records -= lost
        self._size -= skipped
        self._oldest = None

    # Reading.

    def _following(self, segment: _Segment | None) -> _Segment | None:
        if segment is None:
            return self._segments[0] if self._segments else None
        index = next(i for i, s in enumerate(self._segments) if s is segment)
        return self._segments[index + 1] if index + 1 < len(self._segments) else None

    def _start_reading(self, segment: _Segment) -> None:
        self._stop_reading()
        fd = os.open(segment.path, os.O_RDONLY | os.O_CLOEXEC)
        self._reading = segment
        self._scan = _SegmentScan(fd, segment.start)

    def _stop_reading(self) -> None:
        if self._scan.fd >= 0:
            os.close(self._scan.fd)
        self._reading = None
        self._scan = _SegmentScan(-1, 0)

    def _head_time(self) -> float | None:
        segment = next(s for s in self._segments if s.count)
        fd = os.open(segment.path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            header = frame_header(os.pread(fd, HEADER_SIZE, segment.start))
        finally:
            os.close(fd)
        return None if header is None else header[1]


def _write_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view = view[written:]
        offset += written


def _truncate(fd: int, size: int) -> None:
    """Best effort: a failed append's bytes are also overwritten by the next append."""
    try:
        os.ftruncate(fd, size)
    except OSError as error:
        log.warning("spool: cannot truncate a failed append away: %s", error)


def _truncate_path(path: Path, size: int) -> None:
    try:
        os.truncate(path, size)
    except OSError as error:
        log.warning("spool: cannot truncate %s after damage: %s", path.name, error)


def _unlink(path: Path) -> None:
    path.unlink(missing_ok=True)


def _probe(directory: Path) -> None:
    path = directory / ".probe"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        _write_all(fd, _PROBE, 0)
        os.fsync(fd)
    finally:
        os.close(fd)
        _unlink(path)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
