"""An :class:`~ingester.pipeline.OutRecord` as a spool payload and back (pure).

A payload is a msgpack array (msgspec, typed both ways): a format tag, then the record's
fields in a fixed order. About 1 µs each way for a record of a few hundred bytes.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from ingester.pipeline import OutRecord
from ingester.upstream.frames import Stage

__all__ = ["from_payload", "to_payload"]

_TAG = "sr1"  # the format: bump it (and decode the old one) when the fields change
_Payload = tuple[
    Literal["sr1"],
    str,  # topic
    bytes | None,  # key
    bytes,  # value
    list[tuple[str, bytes]],  # headers
    float,  # received_at
    str | None,  # sport
    int | None,  # updated_at_ms
    Stage | None,  # stage
]
_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(_Payload).decode


def to_payload(record: OutRecord) -> bytes:
    """Everything the sink needs to produce ``record`` and count it (topic, key, value,
    headers, received_at, sport, updated_at_ms, stage), compactly (msgpack via msgspec)."""
    return _encode(
        (
            _TAG,
            record.topic,
            record.key,
            record.value,
            record.headers,
            record.received_at,
            record.sport,
            record.updated_at_ms,
            record.stage,
        )
    )


def from_payload(payload: bytes) -> OutRecord:
    """The record :func:`to_payload` made; ``ValueError`` for a payload it did not make."""
    try:
        _, topic, key, value, headers, received_at, sport, updated_at_ms, stage = _decode(payload)
    except msgspec.DecodeError as error:  # ValidationError is a DecodeError
        raise ValueError(f"not a spooled record: {error}") from None
    return OutRecord(topic, key, value, headers, received_at, sport, updated_at_ms, stage)
