"""What every sport shares: the common ``data`` fields, validation errors, the converter.

A sport module (see :mod:`ingester.convert.sports`) only declares ``Data``, a ``TypedDict``
extending :class:`CommonData` whose keys mirror the protocol's JSON and its schema's fields.
Validation is pydantic's strict mode (``bool`` is not an integer, ``1.0`` is not an integer),
unknown keys are dropped, and the validated dict is the Avro record once ``op`` and
``received_at`` are added.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Annotated, Any, NotRequired, cast

from pydantic import Field, PlainValidator, TypeAdapter, ValidationError
from pydantic_core import ErrorDetails
from typing_extensions import TypedDict

from ingester.convert.shape import PlainShape, plain_shape
from ingester.encode.schemas import AvroSchema

__all__ = [
    "OPS",
    "CommonData",
    "PositiveInt",
    "SportConverter",
    "TimestampMillis",
    "ValidationFailed",
    "json_type_name",
    "parse_timestamp_millis",
]

#: The frame ops that become records.
OPS = frozenset({"snapshot", "update"})

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)
_JSON_TYPE_NAMES = {
    bool: "boolean",
    int: "integer",
    float: "number",
    str: "string",
    list: "array",
    dict: "object",
    type(None): "null",
}
_EXPECTED_BY_ERROR = {
    "int_type": "integer",
    "string_type": "string",
    "bool_type": "boolean",
    "list_type": "array",
    "dict_type": "object",
}


class ValidationFailed(ValueError):
    """``data`` does not fit the sport's shape; ``str()`` is one line: ``<path>: <problem>``."""


def json_type_name(value: object) -> str:
    """The JSON name of ``value``'s type (``string``, ``integer``, ``null``...)."""
    return _JSON_TYPE_NAMES.get(type(value), type(value).__name__)


def parse_timestamp_millis(value: object) -> int:
    """Epoch milliseconds of an ISO-8601 string (``2026-11-28T16:03:12.120Z``); naive is UTC."""
    if not isinstance(value, str):
        raise ValueError(f"expected ISO-8601 timestamp string, got {json_type_name(value)}")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"invalid ISO-8601 timestamp {value[:40]!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // _MILLISECOND


#: An ISO-8601 string in the frame, epoch milliseconds in the record.
TimestampMillis = Annotated[int, PlainValidator(parse_timestamp_millis)]
#: An integer above zero (ids).
PositiveInt = Annotated[int, Field(gt=0)]


class CommonData(TypedDict):
    """The ``data`` fields every sport carries (protocol: "fields common to every sport")."""

    match_id: PositiveInt
    sport: str
    competition: str
    home: str
    away: str
    status: str
    start_time: TimestampMillis
    seq: NotRequired[int | None]
    updated_at: NotRequired[TimestampMillis | None]


def _describe(error: ErrorDetails) -> str:
    """One error of pydantic's as ``problem`` in JSON terms."""
    kind = error["type"]
    if kind == "missing":
        return "required field missing"
    if kind in _EXPECTED_BY_ERROR:
        return f"expected {_EXPECTED_BY_ERROR[kind]}, got {json_type_name(error['input'])}"
    if kind == "greater_than":
        return f"must be greater than {error.get('ctx', {}).get('gt')}, got {error['input']!r}"
    if kind == "value_error":
        return str(error.get("ctx", {}).get("error", error["msg"]))
    return error["msg"]


def _path(location: tuple[int | str, ...]) -> str:
    """``("events", 3, "team")`` as ``data.events[3].team``."""
    return "data" + "".join(
        f"[{part}]" if isinstance(part, int) else f".{part}" for part in location
    )


def _validation_message(exc: ValidationError) -> str:
    """The first error of ``exc`` as one line, with a count of the others."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    line = f"{_path(first['loc'])}: {_describe(first)}"
    if len(errors) > 1:
        line += f" (and {len(errors) - 1} more)"
    return line.replace("\n", " ")


class SportConverter:
    """Validates one sport's ``data`` and returns the Avro-ready record for its schema."""

    __slots__ = ("_shape", "_validate", "schema", "schema_name", "sport")

    def __init__(self, sport: str, schema: AvroSchema, data_type: type[CommonData]) -> None:
        self.sport = sport
        self.schema = schema
        #: Full Avro record name, e.g. ``com.sportrix.livescores.SoccerMatchState``.
        self.schema_name = schema.name
        self._validate = partial(TypeAdapter(data_type).validate_python, strict=True)
        self._shape = plain_shape(data_type, schema.parsed, TimestampMillis, PositiveInt)

    @property
    def shape(self) -> PlainShape | None:
        """What :meth:`unchecked` needs beyond the writer; ``None`` when it cannot be used."""
        return self._shape

    @property
    def writer_validates(self) -> bool:
        """True when a strict Avro writer accepts exactly what :meth:`convert` accepts, once
        :meth:`unchecked` has parsed the timestamps (see :mod:`ingester.convert.shape`)."""
        return self._shape is not None

    def unchecked(
        self, op: str, data: dict[str, Any], received_at_ms: int
    ) -> dict[str, Any] | None:
        """The record of :meth:`convert` without pydantic, for a strict Avro writer to check;
        ``None`` when that is not possible (see :attr:`writer_validates`) or not valid.

        ``data``'s nested values are shared, not copied.
        """
        shape = self._shape
        if shape is None or op not in OPS or data.get("sport") != self.sport:
            return None
        record = dict(data)
        for key in shape.positive:
            value = record.get(key)
            if type(value) is not int or value <= 0:
                return None
        for key, required, nullable in shape.timestamps:
            if key not in record:
                if required:
                    return None
                continue
            value = record[key]
            if value is None:
                if not nullable:
                    return None
                continue
            try:
                record[key] = parse_timestamp_millis(value)
            except ValueError:
                return None
        return _completed(record, op, received_at_ms)

    def convert(self, op: str, data: Any, received_at_ms: int) -> dict[str, Any]:
        """The record for one ``snapshot``/``update`` frame; raise :class:`ValidationFailed`.

        Nullable fields missing from ``data`` are written as null (their Avro default).
        """
        if op not in OPS:
            raise ValidationFailed(f"op: expected snapshot or update, got {op!r}")
        try:
            record = cast(dict[str, Any], self._validate(data))
        except ValidationError as exc:
            raise ValidationFailed(_validation_message(exc)) from None
        if record["sport"] != self.sport:
            raise ValidationFailed(f"data.sport: expected {self.sport!r}, got {record['sport']!r}")
        return _completed(record, op, received_at_ms)


def _completed(record: dict[str, Any], op: str, received_at_ms: int) -> dict[str, Any]:
    """``record`` with what the converter adds: null ``seq``/``updated_at`` when missing,
    ``op`` and ``received_at``."""
    record.setdefault("seq", None)
    record.setdefault("updated_at", None)
    record["op"] = op
    record["received_at"] = received_at_ms
    return record
