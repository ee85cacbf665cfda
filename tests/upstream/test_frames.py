"""Frame decoding follows the protocol's tolerance table."""

import pytest

from ingester.upstream.frames import (
    DataFrame,
    ErrorFrame,
    FrameRejected,
    UnknownOp,
    decode_frame,
)

SNAPSHOT = b'{"op":"snapshot","match_id":7,"data":{"match_id":7,"sport":"soccer","seq":3}}'


def test_data_frame_is_decoded_with_its_envelope() -> None:
    frame = decode_frame(SNAPSHOT)
    assert frame == DataFrame(
        op="snapshot", match_id=7, sport="soccer", data={"match_id": 7, "sport": "soccer", "seq": 3}
    )


def test_error_frame_keeps_code_match_and_text() -> None:
    frame = decode_frame(b'{"op":"error","match_id":9,"code":"sport_not_enabled","error":"no"}')
    assert frame == ErrorFrame(match_id=9, code="sport_not_enabled", message="no")


def test_error_frame_without_code_or_match() -> None:
    assert decode_frame(b'{"op":"error"}') == ErrorFrame(match_id=None, code=None, message="")


def test_unknown_op_is_not_an_error() -> None:
    assert decode_frame(b'{"op":"heartbeat","match_id":1}') == UnknownOp("heartbeat")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{nope", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"[1,2]", "not a JSON object"),
        (b'"text"', "not a JSON object"),
        (b'{"match_id":1}', "no string op"),
        (b'{"op":5}', "no string op"),
    ],
)
def test_undecodable_frames_are_rejected_at_decode(raw: bytes, reason: str) -> None:
    with pytest.raises(FrameRejected) as info:
        decode_frame(raw)
    assert info.value.stage == "decode"
    assert reason in info.value.reason
    assert info.value.match_id is None


@pytest.mark.parametrize(
    ("raw", "field", "match_id"),
    [
        (b'{"op":"update","data":{"sport":"soccer"}}', "match_id", None),
        (b'{"op":"update","match_id":true,"data":{"sport":"soccer"}}', "match_id", None),
        (b'{"op":"update","match_id":-4,"data":{"sport":"soccer"}}', "match_id", None),
        (b'{"op":"update","match_id":4}', "data", 4),
        (b'{"op":"update","match_id":4,"data":[]}', "data", 4),
        (b'{"op":"update","match_id":4,"data":{"seq":1}}', "data.sport", 4),
        (b'{"op":"update","match_id":4,"data":{"sport":""}}', "data.sport", 4),
        (
            b'{"op":"update","match_id":4,"data":{"sport":"soccer","match_id":5}}',
            "data.match_id",
            4,
        ),
    ],
)
def test_bad_envelopes_are_rejected_at_validate(
    raw: bytes, field: str, match_id: int | None
) -> None:
    with pytest.raises(FrameRejected) as info:
        decode_frame(raw)
    assert info.value.stage == "validate"
    assert info.value.reason.startswith(field + ":")
    assert info.value.match_id == match_id
