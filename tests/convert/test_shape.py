"""The writer-validated way of a frame: taken only where it accepts exactly what pydantic does."""

from __future__ import annotations

import io
from typing import Annotated, Any, Literal, NotRequired

import fastavro
import orjson
import pytest
from fastavro.validation import ValidationError, validate
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ConfigDict, Field
from typing_extensions import TypedDict

from ingester.codecs import codecs_for
from ingester.convert import ValidationFailed, load_converters
from ingester.convert.common import CommonData, PositiveInt, TimestampMillis
from ingester.convert.samples import protocol_example
from ingester.convert.shape import plain_shape
from ingester.encode import EncodeFailed, build_encoder
from ingester.encode.encoders import SINGLE_OBJECT_MAGIC
from tests.encode.test_fuzz import mutated_data

CONVERTERS = load_converters()
ENCODER = build_encoder(CONVERTERS.schemas, topic="live-scores")
CODECS = codecs_for(CONVERTERS, ENCODER)
RECEIVED_AT_MS = 1_795_881_792_500


def checked(sport: str, op: str, data: Any) -> bytes | str:
    """The value pydantic then fastavro give, or the error: fastavro itself, not the
    encoder, whose compiled writer is what the unchecked way is compared with."""
    converter = CONVERTERS.get(sport)
    assert converter is not None
    schema = ENCODER.encoder_for(converter.schema_name).schema
    try:
        record = converter.convert(op, data, RECEIVED_AT_MS)
        validate(record, schema.parsed, raise_errors=True)
    except (ValidationFailed, ValidationError) as exc:
        return str(exc)
    body = io.BytesIO()
    fastavro.schemaless_writer(body, schema.parsed, record)
    return SINGLE_OBJECT_MAGIC + schema.fingerprint + body.getvalue()


def unchecked(sport: str, op: str, data: Any, json_native: bool = False) -> bytes | None:
    """The value of the writer-validated way, or ``None`` when it hands the frame over."""
    converter = CONVERTERS.get(sport)
    assert converter is not None
    record = converter.unchecked(op, data, RECEIVED_AT_MS)
    if record is None:
        return None
    return ENCODER.encoder_for(converter.schema_name).encode_strict(record, json_native)


@pytest.mark.parametrize("sport", ["soccer", "cricket"])
def test_the_shipped_sports_take_the_writer_validated_way(sport: str) -> None:
    converter = CONVERTERS.get(sport)
    assert converter is not None
    assert converter.writer_validates
    example = protocol_example(sport)
    for op in ("snapshot", "update"):
        value = unchecked(sport, op, example)
        assert value is not None
        assert value == checked(sport, op, example)
        assert CODECS[sport].record(op, example, RECEIVED_AT_MS)[1] == value
    del example["updated_at"]  # optional: still the fast way, written as null
    assert unchecked(sport, "update", example) == checked(sport, "update", example)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.update(match_id=0), "data.match_id: must be greater than 0, got 0"),
        (lambda d: d.update(start_time="soon"), "data.start_time: invalid ISO-8601"),
        (lambda d: d.pop("start_time"), "data.start_time: required field missing"),
        (lambda d: d.update(updated_at=None, seq=True), "data.seq: expected integer, got boolean"),
        (lambda d: d["score"].update(home="1"), "data.score.home: expected integer, got string"),
        (lambda d: d["events"][0].pop("label"), "data.events[0].label: required field missing"),
        (lambda d: d.update(sport="cricket"), "data.sport: expected 'soccer', got 'cricket'"),
    ],
)
def test_a_refused_frame_gets_the_checked_way_and_its_exact_error(edit: Any, message: str) -> None:
    data = protocol_example("soccer")
    edit(data)
    assert unchecked("soccer", "update", data) is None
    with pytest.raises(ValidationFailed, match=message.replace("[", r"\[").replace("(", r"\(")):
        CODECS["soccer"].record("update", data, RECEIVED_AT_MS)


def test_a_value_avro_cannot_hold_is_an_encode_error() -> None:
    data = protocol_example("soccer")
    data["score"]["home"] = 2**40  # a valid integer, beyond Avro's int
    with pytest.raises(EncodeFailed):
        CODECS["soccer"].record("update", data, RECEIVED_AT_MS)


@settings(max_examples=500, deadline=None)
@given(mutated_data(), st.sampled_from(["snapshot", "update", "error"]))
def test_whatever_the_writer_takes_pydantic_takes_with_the_same_bytes(data: Any, op: str) -> None:
    if not isinstance(data, dict):
        return
    try:  # as a frame arrives, where the array memos apply
        decoded = orjson.loads(orjson.dumps(data))
    except orjson.JSONEncodeError:  # an int beyond 64 bits, which orjson.loads never returns
        decoded = {}
    for sport in ("soccer", "cricket"):
        value = unchecked(sport, op, data)
        if value is not None:
            assert checked(sport, op, data) == value
        value = unchecked(sport, op, decoded, json_native=True)
        if value is not None:  # the second time, from the memos where they hold the arrays
            assert checked(sport, op, decoded) == value
            assert unchecked(sport, op, decoded, json_native=True) == value


# --------------------------------------------------------------------------- plain_shape


def _schema(*fields: dict[str, Any]) -> dict[str, Any]:
    common = [
        {"name": "match_id", "type": "long"},
        {"name": "sport", "type": "string"},
        {"name": "competition", "type": "string"},
        {"name": "home", "type": "string"},
        {"name": "away", "type": "string"},
        {"name": "status", "type": "string"},
        {"name": "start_time", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "seq", "type": ["null", "long"], "default": None},
        {
            "name": "updated_at",
            "type": ["null", {"type": "long", "logicalType": "timestamp-millis"}],
            "default": None,
        },
        {"name": "op", "type": {"type": "enum", "name": "Op", "symbols": ["snapshot", "update"]}},
        {"name": "received_at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    ]
    parsed: dict[str, Any] = fastavro.parse_schema(
        {"type": "record", "name": "t.Tennis", "fields": [*common, *fields]}
    )
    return parsed


def _shape(data_type: type, *fields: dict[str, Any]) -> object:
    return plain_shape(data_type, _schema(*fields), TimestampMillis, PositiveInt)


class Games(TypedDict):
    home: int
    away: int


class Plain(CommonData):
    games: Games
    server: NotRequired[str | None]
    sets: list[Games]


GAMES = {
    "type": "record",
    "name": "Games",
    "fields": [{"name": "home", "type": "int"}, {"name": "away", "type": "int"}],
}
PLAIN_FIELDS = (
    {"name": "games", "type": GAMES},
    {"name": "server", "type": ["null", "string"], "default": None},
    {"name": "sets", "type": {"type": "array", "items": "Games"}},
)


def test_a_shape_that_agrees_field_by_field_is_plain() -> None:
    shape = _shape(Plain, *PLAIN_FIELDS)
    assert shape is not None
    assert shape.timestamps == (("start_time", True, False), ("updated_at", False, True))
    assert shape.positive == ("match_id",)


class WithLiteral(CommonData):
    surface: Literal["clay", "grass"]


class WithConstraint(CommonData):
    games: Annotated[int, Field(lt=100)]


class NestedTimestamp(TypedDict):
    at: TimestampMillis


class WithNestedTimestamp(CommonData):
    last: NestedTimestamp


class Partial(CommonData, total=False):
    server: str


class Configured(CommonData):
    __pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[misc]
    server: str


class ConfiguredGames(TypedDict):
    __pydantic_config__ = ConfigDict(str_strip_whitespace=True)  # type: ignore[misc]
    home: int
    away: int


class NestedConfigured(CommonData):
    games: ConfiguredGames


@pytest.mark.parametrize(
    ("data_type", "fields"),
    [
        (WithLiteral, ({"name": "surface", "type": "string"},)),
        (WithConstraint, ({"name": "games", "type": "int"},)),
        (
            WithNestedTimestamp,
            (
                {
                    "name": "last",
                    "type": {
                        "type": "record",
                        "name": "Last",
                        "fields": [
                            {
                                "name": "at",
                                "type": {"type": "long", "logicalType": "timestamp-millis"},
                            }
                        ],
                    },
                },
            ),
        ),
        (Partial, ({"name": "server", "type": "string"},)),
        (Configured, ({"name": "server", "type": "string"},)),
        (NestedConfigured, ({"name": "games", "type": GAMES},)),
        # a default where the key is required: the writer would take a frame without it
        (
            Plain,
            (
                *PLAIN_FIELDS[:1],
                {**PLAIN_FIELDS[1], "type": "string", "default": ""},
                PLAIN_FIELDS[2],
            ),
        ),
        # a schema field the TypedDict does not declare
        (Plain, (*PLAIN_FIELDS, {"name": "court", "type": "string"})),
        # a TypedDict key the schema does not have: the writer would never look at it
        (Plain, PLAIN_FIELDS[:2]),
        # types that disagree
        (
            Plain,
            (*PLAIN_FIELDS[:2], {"name": "sets", "type": {"type": "array", "items": "string"}}),
        ),
    ],
)
def test_a_shape_the_writer_cannot_vouch_for_is_left_to_pydantic(
    data_type: type, fields: tuple[dict[str, Any], ...]
) -> None:
    assert _shape(data_type, *fields) is None
