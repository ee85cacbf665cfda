"""An append-only, crash-safe log of byte payloads in segment files (the spool's store).

INTERFACE STUB: the signatures and contracts below are binding; the bodies are being written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

__all__ = ["Damage", "SegmentLog", "SpoolError", "SpoolFull"]


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


class SegmentLog:
    """Payloads appended in order to segment files in ``directory``, read back oldest
    first, and released once delivered; survives ``kill -9`` (everything :meth:`append`
    returned for is in the OS page cache) and, after :meth:`sync`, power loss.

    Open (the constructor) creates ``directory`` if needed, takes an exclusive lock on it
    (``fcntl.flock`` on a lock file: a second daemon on the same spool is a
    :class:`SpoolError`), proves it writable, reads the persisted read position and scans
    the segments (torn tail truncated, damage recorded in :attr:`damage`). Memory use is
    O(segments), never O(records). Every method is synchronous and meant for the event
    loop (page-cache I/O, fast) except :meth:`sync`, which blocks on ``fsync`` and is run in
    a worker thread while the loop keeps appending, reading and releasing.
    """

    def __init__(
        self, directory: Path, max_bytes: int, *, segment_bytes: int = 16 * 1024 * 1024
    ) -> None:
        raise NotImplementedError

    @property
    def records(self) -> int:
        """Payloads held: appended and not yet released (read or not)."""
        raise NotImplementedError

    @property
    def unread(self) -> int:
        """Payloads held and not yet returned by :meth:`read`."""
        raise NotImplementedError

    @property
    def size(self) -> int:
        """Bytes the held payloads take on disk (framing included; counts against
        ``max_bytes``)."""
        raise NotImplementedError

    @property
    def max_bytes(self) -> int:
        """The bound given at open."""
        raise NotImplementedError

    @property
    def oldest_appended_at(self) -> float | None:
        """Wall-clock time (``time.time()``) the oldest held payload was appended; ``None``
        when empty. Kept in each frame's header, so it survives a restart."""
        raise NotImplementedError

    def take_damage(self) -> list[Damage]:
        """The damage found since the last call (at open, then by :meth:`read`), oldest
        first: the caller logs and counts each."""
        raise NotImplementedError

    def append(self, payloads: Sequence[bytes]) -> None:
        """Append ``payloads`` after everything held, in order; all or nothing.

        Raises :class:`SpoolFull` (nothing written) when they do not fit in ``max_bytes``,
        and ``OSError`` (disk full ``ENOSPC``, file too large ``EFBIG``, I/O error) when the
        write fails: then whatever part was written is truncated away and the log stays
        usable, holding exactly what it held before the call.
        """
        raise NotImplementedError

    def prepend(self, payloads: Sequence[bytes]) -> None:
        """Put ``payloads`` before everything held (a new oldest segment): at shutdown, the
        records still in memory that are older than the log's content. Read next, before
        the rest; same errors as :meth:`append`. Only called with nothing read and not
        released (``unread == records``)."""
        raise NotImplementedError

    def read(self, limit: int) -> list[bytes]:
        """Up to ``limit`` payloads after those already read, oldest first (``[]`` when
        none are unread). A corrupt frame ends its segment's reading: recorded as
        :class:`Damage` and the next segment follows."""
        raise NotImplementedError

    def release(self, count: int) -> None:
        """The ``count`` oldest payloads read and not yet released are delivered: move the
        persisted read position past them and delete the segments wholly released. A
        restart delivers again what was read and not released (at-least-once)."""
        raise NotImplementedError

    def rewind(self) -> None:
        """Forget what was read and not released: the next :meth:`read` starts again at
        the oldest held payload (what a restart would do)."""
        raise NotImplementedError

    def sync(self) -> None:
        """``fsync`` what was appended and the read position (and the directory after a
        segment was created or deleted): after it returns, a power loss loses nothing held
        before the call. Blocking; safe to run in a worker thread while the event loop uses
        the other methods."""
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """What ``/status`` shows: directory, records, unread, size (bytes), max_bytes,
        segments, oldest record's age in seconds."""
        raise NotImplementedError

    def close(self) -> None:
        """Sync, then release the files and the directory lock."""
        raise NotImplementedError
