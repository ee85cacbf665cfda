"""A record as a spool payload and back."""

from __future__ import annotations

import msgspec
import pytest

from ingester.pipeline import OutRecord
from ingester.produce.spool.records import from_payload, to_payload


def test_every_field_the_sink_needs_comes_back() -> None:
    record = OutRecord(
        topic="live-scores",
        key=b"41282",
        value=b"\xc3\x01" + bytes(range(256)),
        headers=[("sport", b"soccer"), ("op", b"update"), ("schema", b"com.sportrix.Soccer")],
        received_at=1_800_000_000.125,
        sport="soccer",
        updated_at_ms=1_800_000_000_100,
    )
    assert from_payload(to_payload(record)) == record


def test_a_dead_letter_keeps_its_stage_and_null_key() -> None:
    record = OutRecord(
        topic="live-scores-dlq",
        key=None,
        value=b"{not json",
        headers=[("stage", b"decode"), ("error", b"x")],
        received_at=1.5,
        stage="decode",
    )
    assert from_payload(to_payload(record)) == record


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"junk",
        msgspec.msgpack.encode(["other", "t", None, b"", [], 0.0, None, None, None]),
        msgspec.msgpack.encode(["sr1", "t", None, b"", [], 0.0, None, None, "nowhere"]),
        msgspec.msgpack.encode({"topic": "t"}),
    ],
)
def test_a_foreign_payload_is_a_value_error(payload: bytes) -> None:
    with pytest.raises(ValueError, match="not a spooled record"):
        from_payload(payload)
