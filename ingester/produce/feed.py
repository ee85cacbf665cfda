"""The upstream sessions' :class:`~ingester.upstream.session.FrameSink`: every message
through the :class:`FrameProcessor`, its record (if any) into the :class:`RecordBuffer`."""

from __future__ import annotations

from ingester.pipeline import FrameProcessor, OutRecord
from ingester.produce.buffer import RecordBuffer
from ingester.upstream.session import Fed
from ingester.upstream.subscriptions import Action

__all__ = ["RecordFeed"]


class RecordFeed:
    """Processes messages and queues their records; a record that finds the buffer full is
    answered with an awaitable that queues it once there is room (backpressure)."""

    def __init__(self, processor: FrameProcessor, buffer: RecordBuffer) -> None:
        self._process = processor.process
        self._process_oversized = processor.process_oversized
        self._buffer = buffer

    @property
    def full(self) -> bool:
        """True while a record would wait for room."""
        return self._buffer.full

    def feed(self, raw: bytes, received_at: float, now: float, connection: int | None) -> Fed:
        """One message read from upstream ``connection`` (see :meth:`FrameProcessor.process`)."""
        return self._queue(*self._process(raw, received_at, now, connection))

    def feed_oversized(
        self, head: bytes, reason: str, received_at: float, connection: int | None
    ) -> Fed:
        """The kept ``head`` of a message over the size limit (its dead letter)."""
        return self._queue(*self._process_oversized(head, reason, received_at, connection))

    def _queue(self, record: OutRecord | None, actions: list[Action]) -> Fed:
        if record is None:
            return actions
        if self._buffer.full:
            return self._put(record, actions)
        self._buffer.put_nowait(record)
        return actions

    async def _put(self, record: OutRecord, actions: list[Action]) -> list[Action]:
        # A put cancelled while it waits (shutdown) still queues its record.
        await self._buffer.put(record)
        return actions
