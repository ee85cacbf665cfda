"""An :class:`~ingester.pipeline.OutRecord` as a spool payload and back (pure).

INTERFACE STUB: the signatures are binding; the bodies are being written.
"""

from __future__ import annotations

from ingester.pipeline import OutRecord

__all__ = ["from_payload", "to_payload"]


def to_payload(record: OutRecord) -> bytes:
    """Everything the sink needs to produce ``record`` and count it (topic, key, value,
    headers, received_at, sport, updated_at_ms, stage), compactly (msgpack via msgspec)."""
    raise NotImplementedError


def from_payload(payload: bytes) -> OutRecord:
    """The record :func:`to_payload` made; ``ValueError`` for a payload it did not make."""
    raise NotImplementedError
