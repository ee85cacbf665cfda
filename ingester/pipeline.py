"""One upstream message in, at most one Kafka record out (pure: no sockets, no clock).

:class:`FrameProcessor` is the hot path: decode → validate → convert → encode. Every
message ends as exactly one of: a record for the data topic, a record for the dead-letter
topic, or a counted skip (an unknown ``op``, a frame for a match not followed here, an
``error`` frame). It also feeds the :class:`SubscriptionBook`, whose answer may ask for a
re-subscribe (a ``seq`` gap); those actions are returned for the asyncio layer to send.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from ingester.observe.metrics import ERROR_CODES, Metrics
from ingester.upstream.frames import (
    DataFrame,
    ErrorFrame,
    FrameRejected,
    Stage,
    UnknownOp,
    decode_frame,
    positive_int,
)
from ingester.upstream.subscriptions import (
    OVERSIZED_TRIES,
    Action,
    FrameVerdict,
    SubscriptionBook,
)

__all__ = ["FastRecord", "FrameProcessor", "OutRecord", "SportCodec", "SportCodecs"]

log = logging.getLogger(__name__)

_NO_ACTIONS: list[Action] = []
_MAX_ERROR_HEADER = 512
_MATCH_ID = re.compile(rb'"match_id"\s*:\s*(\d{1,19})\b')


class SportCodec(Protocol):
    """What the pipeline needs per sport: validate, convert and encode."""

    @property
    def sport(self) -> str:
        """The ``data.sport`` value this codec handles."""

    @property
    def schema_name(self) -> str:
        """The full Avro name of the sport's record."""

    def record(
        self, op: str, data: dict[str, Any], received_at_ms: int, json_native: bool = False
    ) -> tuple[dict[str, Any], bytes]:
        """Validate ``data``, build the Avro record (``updated_at`` in epoch millis) and
        encode it in the configured wire format. ``json_native``: ``data`` is exactly what
        ``orjson.loads`` returned, which lets the encoder reuse encoded arrays."""


#: A message done by the codecs' fast way: its frame, its sport's codec, record and value.
FastRecord = tuple[DataFrame, SportCodec, dict[str, Any], bytes]


class SportCodecs(Protocol):
    """Every sport's codec, and the fast way from a whole message to its record."""

    def get(self, sport: str) -> SportCodec | None:
        """The codec of ``sport``; ``None`` for a sport without a schema."""

    def __contains__(self, sport: object) -> bool:
        """Whether ``sport`` has a codec."""

    def fast_record(self, raw: bytes, received_at_ms: int) -> FastRecord | None:
        """A valid data frame's record, done the fast way; ``None`` (nothing done, no error)
        for any message it is not sure of, which then takes :func:`decode_frame` and
        :meth:`SportCodec.record`, with the same outcome."""


@dataclass(slots=True)
class OutRecord:
    """A record bound for Kafka, with what the producer side needs for metrics."""

    topic: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]
    received_at: float
    sport: str | None = None
    updated_at_ms: int | None = None
    stage: Stage | None = None  # set for dead letters
    buffered_at: float = 0.0  # wall-clock time the buffer took it (the produce stages)
    spooled: bool = False  # read back from the disk spool (released from it once in Kafka)


class FrameProcessor:
    """Turns upstream messages into :class:`OutRecord` values; see the module docstring.

    ``classify`` maps an exception raised by a codec to its dead-letter stage. A message
    from a live connection tries :meth:`SportCodecs.fast_record` first: faster, with the same
    outcome for every frame but one documented case (``docs/schemas.md``, *the lazy way*).
    """

    def __init__(
        self,
        book: SubscriptionBook,
        codecs: SportCodecs,
        classify: Callable[[Exception], Stage],
        metrics: Metrics,
        topic: str,
        dlq_topic: str,
        instance_id: str,
    ) -> None:
        self.book = book
        self._codecs = codecs
        self._fast_record = codecs.fast_record
        self._classify = classify
        self._metrics = metrics
        self._topic = topic
        self._dlq_topic = dlq_topic
        self._producer = instance_id.encode()
        self._headers: dict[tuple[str, str], list[tuple[str, bytes]]] = {}
        self._frame_counts: dict[tuple[str, str], int] = {}

    def process(
        self, raw: bytes, received_at: float, now: float, connection: int | None
    ) -> tuple[OutRecord | None, list[Action]]:
        """Handle one message read from upstream ``connection`` at wall-clock
        ``received_at`` (monotonic ``now``).

        A data frame is produced only when ``connection`` holds its match now
        (:meth:`SubscriptionBook.holds`); else it is a counted ``not_followed`` skip, even if
        the match is followed on another connection (which brings its frames, in order, from
        a snapshot). ``connection`` is ``None`` for a connection being closed: it holds no
        match. An error frame refuses a match only when its connection holds it; a malformed
        message is dead-lettered wherever it comes from.
        """
        if connection is not None:
            fast = self._fast_record(raw, int(received_at * 1000))
            if fast is not None:
                data, codec, record, value = fast
                if self.book.holds(data.match_id, connection, data.op == "snapshot"):
                    self._count_frame(data.sport, data.op)
                    return self._produced(data, connection, codec, record, value, received_at, now)
        try:
            frame = decode_frame(raw)
        except FrameRejected as exc:
            return self._dead_letter(raw, exc, received_at), _NO_ACTIONS
        if isinstance(frame, DataFrame):
            return self._data(frame, raw, received_at, now, connection)
        if isinstance(frame, ErrorFrame):
            self._error(frame, now, connection)
        elif isinstance(frame, UnknownOp):
            self._metrics.skipped_frames.labels(reason="unknown_op").inc()
            log.debug("skipped a frame with unknown op %r", frame.op[:40])
        return None, _NO_ACTIONS

    def process_oversized(
        self, head: bytes, reason: str, received_at: float, connection: int | None
    ) -> tuple[OutRecord | None, list[Action]]:
        """The dead letter (stage ``decode``) of a message over the size limit that ended
        upstream ``connection``, of which only ``head``, its first bytes, was kept; keyed by
        the first ``match_id`` in ``head``, and counted against that match
        (:meth:`SubscriptionBook.on_oversized`), which is no longer subscribed after a few."""
        found = _MATCH_ID.search(head)
        match_id = positive_int(int(found[1])) if found else None
        error = FrameRejected(
            "decode",
            f"message over the size limit ({reason}); its first {len(head)} bytes kept",
            match_id,
        )
        if (
            match_id is not None
            and connection is not None
            and self.book.on_oversized(match_id, connection)
        ):
            log.error(
                "match %d: no longer subscribed after %d messages over the size limit in a "
                "row (remove and add it to try again)",
                match_id,
                OVERSIZED_TRIES,
            )
        return self._dead_letter(head, error, received_at), _NO_ACTIONS

    def _data(
        self,
        frame: DataFrame,
        raw: bytes,
        received_at: float,
        now: float,
        connection: int | None,
    ) -> tuple[OutRecord | None, list[Action]]:
        self._count_frame(frame.sport, frame.op)
        if connection is None or not self.book.holds(
            frame.match_id, connection, frame.op == "snapshot"
        ):
            self._metrics.skipped_frames.labels(reason="not_followed").inc()
            return None, _NO_ACTIONS
        codec = self._codecs.get(frame.sport)
        if codec is None:
            error = FrameRejected("convert", f"no schema for sport {frame.sport[:40]!r}")
            error.match_id = frame.match_id
            return self._dead_letter(raw, error, received_at), _NO_ACTIONS
        try:
            record, value = codec.record(
                frame.op, frame.data, int(received_at * 1000), json_native=True
            )
        except Exception as exc:
            rejected = FrameRejected(self._classify(exc), str(exc), frame.match_id)
            return self._dead_letter(raw, rejected, received_at), _NO_ACTIONS
        return self._produced(frame, connection, codec, record, value, received_at, now)

    def _produced(
        self,
        frame: DataFrame,
        connection: int,
        codec: SportCodec,
        record: dict[str, Any],
        value: bytes,
        received_at: float,
        now: float,
    ) -> tuple[OutRecord, list[Action]]:
        """The data record of ``frame``, once the book has seen it (maybe a re-subscribe)."""
        seq = record.get("seq")
        verdict = self.book.on_data(
            frame.match_id,
            connection,
            frame.op == "snapshot",
            seq,
            frame.sport,
            record.get("status"),
            now,
        )
        actions = _NO_ACTIONS
        if verdict is FrameVerdict.GAP:
            self._metrics.seq_gaps.labels(sport=frame.sport).inc()
            log.info("seq gap on match %d (now %s): asking for a snapshot", frame.match_id, seq)
            actions = self.book.resubscribe(frame.match_id)
        elif verdict is FrameVerdict.OUT_OF_ORDER:
            self._metrics.out_of_order.labels(sport=frame.sport).inc()
        return (
            OutRecord(
                topic=self._topic,
                key=str(frame.match_id).encode(),
                value=value,
                headers=self._record_headers(frame.sport, frame.op, codec.schema_name),
                received_at=received_at,
                sport=frame.sport,
                updated_at_ms=record.get("updated_at"),
            ),
            actions,
        )

    def _error(self, frame: ErrorFrame, now: float, connection: int | None) -> None:
        label = frame.code if frame.code in ERROR_CODES else "other"  # bounded label values
        self._metrics.error_frames.labels(code=label).inc()
        code = frame.code[:40] if frame.code else "unknown"
        if (
            connection is not None
            and frame.match_id is not None
            and self.book.on_error(frame.match_id, connection, code, frame.message[:200], now)
        ):
            log.warning(
                "match %d refused by the upstream (%s): %s",
                frame.match_id,
                code,
                frame.message[:200],
            )
        else:
            log.warning("upstream error frame (%s): %s", code, frame.message[:200])

    def _dead_letter(self, raw: bytes, error: FrameRejected, received_at: float) -> OutRecord:
        self._metrics.dlq_records.labels(stage=error.stage).inc()
        reason = " ".join(error.reason.split())[:_MAX_ERROR_HEADER]
        if error.match_id is not None:
            log.warning(
                "match %d: frame dead-lettered (%s): %s", error.match_id, error.stage, reason
            )
        else:
            log.warning("frame dead-lettered (%s): %s", error.stage, reason)
        stamp = datetime.fromtimestamp(received_at, UTC).isoformat(timespec="milliseconds")
        return OutRecord(
            topic=self._dlq_topic,
            key=str(error.match_id).encode() if error.match_id is not None else None,
            value=raw,
            headers=[
                ("error", reason.encode()),
                ("stage", error.stage.encode()),
                ("received_at", stamp.replace("+00:00", "Z").encode()),
                ("producer", self._producer),
            ],
            received_at=received_at,
            stage=error.stage,
        )

    def _count_frame(self, sport: str, op: str) -> None:
        key = (sport if sport in self._codecs else "other", op)  # bounded label values
        counts = self._frame_counts
        counts[key] = counts.get(key, 0) + 1

    def publish_counts(self) -> None:
        """Add the frames counted since the last call to ``frames_total``.

        Counting in a plain dict and publishing each tick and before each scrape costs a
        fraction of a Prometheus counter's locked increment per frame.
        """
        frames = self._metrics.frames
        for (sport, op), count in self._frame_counts.items():
            frames.labels(sport=sport, op=op).inc(count)
        self._frame_counts.clear()

    def _record_headers(self, sport: str, op: str, schema: str) -> list[tuple[str, bytes]]:
        headers = self._headers.get((sport, op))
        if headers is None:
            headers = self._headers[(sport, op)] = [
                ("sport", sport.encode()),
                ("op", op.encode()),
                ("schema", schema.encode()),
                ("producer", self._producer),
            ]
        return headers
