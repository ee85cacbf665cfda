"""The lazy frame decoder: valid data frames straight into the sport's fields, arrays as
JSON text; ``None`` for everything it is not sure of (the pipeline then decodes in full)."""

from __future__ import annotations

from typing import Any

import msgspec
import orjson
import pytest

from ingester.codecs import build_codecs
from ingester.convert.lazy import LazyFrameDecoder
from ingester.convert.samples import protocol_example
from ingester.settings import load_settings
from ingester.upstream.frames import FrameRejected, decode_frame

CODECS, _ = build_codecs(load_settings())
SHAPES = {sport: codec.shape for sport, codec in CODECS.items()}
LAZY = LazyFrameDecoder(SHAPES)


def frame(sport: str = "soccer", **envelope: Any) -> dict[str, Any]:
    data = protocol_example(sport)
    return {"op": "update", "match_id": data["match_id"], "data": data, **envelope}


def test_a_data_frame_keeps_its_arrays_as_json_text() -> None:
    message = frame()
    decoded = LAZY.decode(orjson.dumps(message))
    assert decoded is not None
    assert (decoded.op, decoded.sport) == ("update", "soccer")
    assert decoded.match_id == message["match_id"]
    events = decoded.data.pop("events")
    assert isinstance(events, msgspec.Raw)
    assert orjson.loads(bytes(events)) == message["data"].pop("events")
    assert decoded.data == message["data"]


def test_every_top_level_array_of_cricket_is_json_text() -> None:
    decoded = LAZY.decode(orjson.dumps(frame("cricket", op="snapshot")))
    assert decoded is not None
    assert decoded.op == "snapshot"
    raw = {key for key, value in decoded.data.items() if isinstance(value, msgspec.Raw)}
    assert raw == {"batsmen", "scorecard"}  # over.balls is nested: decoded as a list
    assert decoded.data["over"]["balls"] == protocol_example("cricket")["over"]["balls"]


def test_optional_fields_left_out_stay_out() -> None:
    message = frame()
    del message["data"]["seq"]
    decoded = LAZY.decode(orjson.dumps(message))
    assert decoded is not None
    assert "seq" not in decoded.data


def _changed(change: Any) -> bytes:
    message = frame()
    change(message)
    return orjson.dumps(message)


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"[1, 2]",
        b'{"op": "update"',
        _changed(lambda m: m.update(op="error", code="rate_limited", error="slow down")),
        _changed(lambda m: m.update(op="score_push")),
        _changed(lambda m: m.update(op=["update"])),
        _changed(lambda m: m["data"].update(sport="curling")),
        _changed(lambda m: m["data"].update(sport="")),
        _changed(lambda m: m["data"].pop("sport")),
        _changed(lambda m: m.update(match_id=0)),
        _changed(lambda m: m.update(match_id=True)),
        _changed(lambda m: m.update(match_id=m["match_id"] + 1)),
        _changed(lambda m: m["data"].pop("match_id")),
        _changed(lambda m: m.update(data=None)),
        _changed(lambda m: m.update(data=[1])),
        # Unknown fields: orjson would check them and the pipeline ignore them; msgspec
        # would skip them unchecked (UTF-8, number ranges), so they go the full way.
        _changed(lambda m: m["data"].update(referee="P. Tierney")),
        _changed(lambda m: m.update(ts=1)),
    ],
)
def test_anything_else_is_left_to_the_full_decoder(raw: bytes) -> None:
    assert LAZY.decode(raw) is None


def test_sport_is_required_with_one_sport_too() -> None:
    lazy = LazyFrameDecoder({"soccer": SHAPES["soccer"]})
    message = frame()
    assert lazy.decode(orjson.dumps(message)) is not None
    del message["data"]["sport"]  # a union of one tagged Struct would take this
    assert lazy.decode(orjson.dumps(message)) is None


def test_sports_without_a_shape_are_not_decoded_lazily() -> None:
    lazy = LazyFrameDecoder(dict.fromkeys(SHAPES))
    assert not lazy.enabled
    assert lazy.decode(orjson.dumps(frame())) is None
    assert LAZY.enabled


def _deep(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def _deep_frames(example: bytes, deep: bytes) -> list[bytes]:
    """``example`` with ``deep`` as its op, a top-level value, an array item, a nested value."""
    competition = b'"competition":"%s"' % protocol_example("soccer")["competition"].encode()
    return [
        example.replace(b'"op":"update"', b'"op":' + deep),
        example.replace(competition, b'"competition":' + deep),
        example.replace(b'"events":[', b'"events":[' + deep + b","),
        example.replace(b'"score":{', b'"score":{"junk":' + deep + b","),
    ]


@pytest.mark.parametrize("depth", [1000, 3000])
def test_nesting_beyond_python_s_recursion_limit_is_left_to_the_full_decoder(depth: int) -> None:
    # msgspec's depth check is Python's recursion limit: it raises RecursionError.
    deep = _deep(depth)
    example = orjson.dumps(frame())
    for raw in _deep_frames(example, deep):
        assert LAZY.decode(raw) is None


def test_an_integer_too_large_for_a_double_under_an_unknown_nested_key_is_ignored() -> None:
    """The one known difference from the full way, on purpose: msgspec keeps such an integer
    as an ``int`` under a key the writer ignores, where orjson refuses the whole frame
    ("number is infinity"). The protocol calls the number JSON and the key ignorable."""
    raw = orjson.dumps(frame()).replace(b'"score":{', b'"score":{"junk":' + b"9" * 400 + b",")
    with pytest.raises(FrameRejected, match="infinity"):
        decode_frame(raw)
    decoded = LAZY.decode(raw)
    assert decoded is not None
    assert decoded.data["score"]["junk"] == int("9" * 400)
