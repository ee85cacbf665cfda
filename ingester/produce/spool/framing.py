"""Length + CRC framing of the spool's payloads (pure: bytes in, bytes or frames out).

One frame is a 16-byte header, then the payload::

    crc32 u32 | payload length u32 | appended_at f64 | payload

little-endian; the CRC (``zlib.crc32``) covers everything after itself: the length, the time
and the payload. :class:`FrameScanner` walks frames in a buffer and says why it stopped:
:attr:`Outcome.CLEAN` at the buffer's end, :attr:`Outcome.TORN` when only the end is damaged
(an incomplete last frame, a bad checksum on the very last frame, or a zero-filled tail: what
a crash during a write leaves), :attr:`Outcome.CORRUPT` when a damaged frame has more data
after it (a bad checksum, or a length no frame can have).
"""

from __future__ import annotations

import enum
import struct
import zlib
from collections.abc import Iterator, Sequence

__all__ = [
    "HEADER_SIZE",
    "MAX_PAYLOAD",
    "FrameScanner",
    "Outcome",
    "encode_frames",
    "frame_header",
]

_HEADER = struct.Struct("<IId")
_CRC = struct.Struct("<I")
_COVERED = struct.Struct("<Id")  # what the CRC covers of the header: length, appended_at
HEADER_SIZE = _HEADER.size
#: The largest payload a frame may carry: far above any record (the upstream's messages stop at
#: 4 MiB), so a larger length can only be damage.
MAX_PAYLOAD = 64 * 1024 * 1024


class Outcome(enum.Enum):
    """Why a :class:`FrameScanner` stopped."""

    CLEAN = "clean"
    TORN = "torn"
    CORRUPT = "corrupt"


def encode_frames(payloads: Sequence[bytes], appended_at: float) -> bytes:
    """The frames of ``payloads``, in order, each stamped ``appended_at``.

    ``ValueError`` for a payload over :data:`MAX_PAYLOAD`.
    """
    parts: list[bytes] = []
    for payload in payloads:
        if len(payload) > MAX_PAYLOAD:
            raise ValueError(f"spool payload of {len(payload)} bytes over {MAX_PAYLOAD}")
        covered = _COVERED.pack(len(payload), appended_at)
        parts += (_CRC.pack(zlib.crc32(payload, zlib.crc32(covered))), covered, payload)
    return b"".join(parts)


def frame_header(data: bytes | memoryview, offset: int = 0) -> tuple[int, float] | None:
    """The whole size (header + payload) and the append time of the frame starting at
    ``offset``, as its header says (unchecked); ``None`` while the header is incomplete."""
    if len(data) - offset < HEADER_SIZE:
        return None
    _, length, appended_at = _HEADER.unpack_from(data, offset)
    return HEADER_SIZE + int(length), float(appended_at)


class FrameScanner:
    """Iterates ``(payload, appended_at)`` over the frames of ``data``, in order.

    The payloads are slices of ``data`` (copy them to keep them). When the iteration ends,
    :attr:`outcome` says why, :attr:`detail` says it in words, and :attr:`offset` is where the
    last good frame ends: the length of ``data`` when clean, else where the damage starts.
    While iterating, :attr:`offset` is the end of the frame just yielded.
    """

    def __init__(self, data: bytes | memoryview) -> None:
        self._data = memoryview(data).cast("B")
        self.offset = 0
        self.outcome: Outcome | None = None
        self.detail = ""

    def __iter__(self) -> Iterator[tuple[memoryview, float]]:
        data = self._data
        total = len(data)
        unpack = _HEADER.unpack_from
        crc32 = zlib.crc32
        offset = self.offset
        while offset < total:
            if total - offset < HEADER_SIZE:
                self._stop(Outcome.TORN, f"incomplete header ({total - offset} bytes)")
                return
            crc, length, appended_at = unpack(data, offset)
            end = offset + HEADER_SIZE + length
            if length > MAX_PAYLOAD:
                self._damaged(offset, f"length {length} over the maximum {MAX_PAYLOAD}")
                return
            if end > total:
                self._stop(
                    Outcome.TORN, f"incomplete frame ({total - offset} of {end - offset} bytes)"
                )
                return
            if crc32(data[offset + 4 : end]) != crc:
                self._damaged(offset, "checksum mismatch", last=end == total)
                return
            self.offset = offset = end
            yield data[end - length : end], appended_at
        self._stop(Outcome.CLEAN, "")

    def _damaged(self, offset: int, what: str, *, last: bool = False) -> None:
        rest = self._data[offset:]
        if last or len(rest) <= HEADER_SIZE or rest.tobytes().count(0) == len(rest):
            self._stop(Outcome.TORN, f"{what} at the end")
        else:
            self._stop(Outcome.CORRUPT, f"{what} with {len(rest)} bytes from it on")

    def _stop(self, outcome: Outcome, detail: str) -> None:
        self.outcome = outcome
        self.detail = detail
