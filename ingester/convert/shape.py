"""When the compiled Avro writer can stand in for pydantic on a sport's valid frames.

The compiled writer (:mod:`ingester.encode.compiled`) checks Python types exactly: ``int``
(never ``bool``) for int/long, ``str``, ``bool``, ``list`` for arrays, ``dict`` for records,
``None`` for the null branch, and it ignores keys the schema does not name, as pydantic's
strict mode does with keys a ``TypedDict`` does not declare. So when a sport's ``TypedDict``
and its Avro record agree field by field (same names, a default exactly where the key is
``NotRequired``, matching types) the writer accepts a ``data`` dict only if pydantic would,
except for what pydantic adds on top: ISO-8601 timestamps parsed into epoch milliseconds and
positive ids. :func:`plain_shape` checks that agreement once, at start-up, and names those
extra fields; a shape it cannot vouch for (a constraint, a ``Literal``, a nested timestamp,
a pydantic config) gives ``None`` and that sport is always validated by pydantic.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from typing import Any, NotRequired, Required, get_args, get_origin, get_type_hints

from typing_extensions import is_typeddict

__all__ = ["PlainShape", "plain_shape"]

#: Fields the converter adds to every record (not in the frame's ``data``).
ADDED_FIELDS = frozenset({"op", "received_at"})

_SCALARS: dict[Any, frozenset[str]] = {
    int: frozenset({"int", "long"}),
    str: frozenset({"string", "enum"}),  # an enum writer is stricter still: it falls back
    bool: frozenset({"boolean"}),
    float: frozenset({"float", "double"}),  # both accept an int, refuse a bool
}


@dataclass(frozen=True, slots=True)
class PlainShape:
    """What a record built without pydantic still needs, by top-level field name."""

    #: ``(key, required, nullable)`` of the ISO-8601 strings to parse into epoch millis.
    timestamps: tuple[tuple[str, bool, bool], ...]
    #: Integers that must be above zero.
    positive: tuple[str, ...]
    #: Every top-level key and whether ``data`` must carry it.
    keys: tuple[tuple[str, bool], ...]
    #: Keys whose value is an array (``list[...]``, never null): the writer also takes their
    #: JSON text undecoded.
    arrays: tuple[str, ...]


def plain_shape(
    data_type: type, schema: dict[str, Any], timestamp: Any, positive: Any
) -> PlainShape | None:
    """The extra checks a writer-validated record of ``data_type`` needs, or ``None``.

    ``schema`` is the sport's parsed Avro record; ``timestamp`` and ``positive`` are the
    annotated types (``TimestampMillis``, ``PositiveInt``) allowed at the top level only.
    """
    names: dict[str, Any] = {}
    fields = _fields(schema, names)
    hints = _hints(data_type)
    if hints is None or set(fields) - set(hints) - ADDED_FIELDS:
        return None
    timestamps: list[tuple[str, bool, bool]] = []
    ids: list[str] = []
    for key, (hint, required) in hints.items():
        field = fields.get(key)
        if field is None or required == ("default" in field):
            return None
        avro = field["type"]
        nullable = hint != timestamp
        if _strip_none(hint) == timestamp and _is_timestamp(avro, nullable=nullable):
            timestamps.append((key, required, nullable))
        elif hint == positive and _is_kind(avro, names, _SCALARS[int]):
            ids.append(key)
        elif not _matches(hint, avro, names):
            return None
    keys = tuple((key, required) for key, (_, required) in hints.items())
    arrays = tuple(key for key, (hint, _) in hints.items() if get_origin(hint) is list)
    return PlainShape(tuple(timestamps), tuple(ids), keys, arrays)


def _hints(data_type: type) -> dict[str, tuple[Any, bool]] | None:
    """``key -> (type, required)`` of a ``TypedDict``, ``NotRequired`` unwrapped.

    Read from the resolved hints (``__required_keys__`` is wrong for string annotations),
    so only ``total=True`` types are vouched for, and only without a pydantic config:
    ``None`` otherwise.
    """
    if not getattr(data_type, "__total__", True) or hasattr(data_type, "__pydantic_config__"):
        return None  # pydantic config (extra="forbid", str_strip_whitespace...) changes the rules
    hints = {}
    for key, annotation in get_type_hints(data_type, include_extras=True).items():
        hint, required = annotation, True
        while get_origin(hint) in (NotRequired, Required):
            required = get_origin(hint) is Required
            hint = get_args(hint)[0]
        hints[key] = (hint, required)
    return hints


def _fields(record: dict[str, Any], names: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The record's fields by name, after registering the named types it defines."""
    _register(record, names)
    return {field["name"]: field for field in record["fields"]}


def _register(schema: Any, names: dict[str, Any]) -> None:
    """Remember every named type defined inside ``schema`` (full and short names)."""
    if isinstance(schema, list):
        for branch in schema:
            _register(branch, names)
    elif isinstance(schema, dict):
        if schema.get("type") in ("record", "enum", "fixed"):
            names[schema["name"]] = schema
            names[schema["name"].rsplit(".", 1)[-1]] = schema
        for field in schema.get("fields", ()):
            _register(field["type"], names)
        for child in ("items", "values"):
            if child in schema:
                _register(schema[child], names)


def _resolve(schema: Any, names: dict[str, Any]) -> Any:
    return names.get(schema, schema) if isinstance(schema, str) else schema


def _strip_none(hint: Any) -> Any:
    """``X`` of ``X | None``; ``hint`` itself otherwise."""
    if get_origin(hint) in (typing.Union, types.UnionType):
        others = [arg for arg in get_args(hint) if arg is not type(None)]
        if len(others) == 1 and len(get_args(hint)) == 2:
            return others[0]
    return hint


def _nullable(avro: Any, names: dict[str, Any]) -> Any:
    """``X`` of the union ``["null", X]`` (either order), else ``None``."""
    if isinstance(avro, list) and len(avro) == 2 and "null" in avro:
        return _resolve(avro[1] if avro[0] == "null" else avro[0], names)
    return None


def _is_timestamp(avro: Any, *, nullable: bool) -> bool:
    if nullable:
        avro = _nullable(avro, {})
    return (
        isinstance(avro, dict)
        and avro.get("type") == "long"
        and avro.get("logicalType") == "timestamp-millis"
    )


def _is_kind(avro: Any, names: dict[str, Any], kinds: frozenset[str]) -> bool:
    avro = _resolve(avro, names)
    if isinstance(avro, dict):
        if "logicalType" in avro and avro["type"] not in ("record", "enum", "fixed"):
            return False
        avro = avro["type"]
    return isinstance(avro, str) and avro in kinds


def _matches(hint: Any, avro: Any, names: dict[str, Any]) -> bool:
    """Whether the writer checks ``avro`` exactly as strictly as pydantic checks ``hint``."""
    avro = _resolve(avro, names)
    inner = _strip_none(hint)
    if inner is not hint:
        branch = _nullable(avro, names)
        return branch is not None and _matches(inner, branch, names)
    if isinstance(avro, list):
        return False
    if hint in _SCALARS:
        return _is_kind(avro, names, _SCALARS[hint])
    if get_origin(hint) is list:
        return (
            isinstance(avro, dict)
            and avro.get("type") == "array"
            and _matches(get_args(hint)[0], avro["items"], names)
        )
    if is_typeddict(hint):
        if not (isinstance(avro, dict) and avro.get("type") == "record"):
            return False
        fields = _fields(avro, names)
        hints = _hints(hint)
        return (
            hints is not None
            and set(fields) == set(hints)
            and all(
                required != ("default" in fields[key]) and _matches(sub, fields[key]["type"], names)
                for key, (sub, required) in hints.items()
            )
        )
    return False
