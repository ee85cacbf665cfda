"""Compile an Avro schema into a specialised Python function that writes the binary body.

fastavro's generic writer walks the schema for every record and validates every union branch;
on the hot path that costs more than validation and conversion together. The compiled function
does the same walk once, at start-up, and emits straight-line code: inline fast paths for
integers below 8,192, ``None`` checks for ``["null", X]`` unions, precomputed enum bytes, and
a bounded cache of encoded short strings (team and player names, statuses, event labels
repeat from one frame of a match to the next: a dict lookup replaces encoding and framing),
and, for records made of decoded JSON, encoded arrays remembered by their JSON text
(:class:`ArrayMemo`: a soccer match's events list is the same in 98 % of its frames). Its
output is byte-identical to fastavro's (property tests hold it to that).

The compiled writer is strict about Python types (``int`` for int/long and for logical types
built on them, ``str`` for strings, ``bool`` for booleans) and raises on anything else; the
caller then asks fastavro, the authority, to validate and write the record (see
:class:`ingester.encode.encoders.SingleObjectEncoder`). Schemas it cannot compile (a union whose
branches Python types cannot tell apart, an unusual logical type) raise :class:`Unsupported`
and are written by fastavro alone.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any, Protocol

import msgspec
import orjson

__all__ = ["ArrayMemo", "BodyWriter", "Unsupported", "compile_writer"]


class BodyWriter(Protocol):
    """A compiled writer."""

    def __call__(self, out: bytearray, record: Any, json_native: bool = False) -> None:
        """Append the Avro binary body of ``record`` to ``out``; raise for a value it does not
        take. ``json_native=True`` promises that the values are what ``orjson.loads``
        returned (and ints and strings the converter added): no NaN or infinity, enum,
        UUID, tuple or ``orjson.Fragment``, whose JSON text would pass for another value's.
        It lets the writer use its array memos (msgspec's values for a lazily decoded frame
        qualify too: its integers beyond 64 bits, where orjson would give a float, have no
        JSON key). An array field may also hold its JSON text undecoded (``msgspec.Raw``,
        whatever ``json_native`` says): the writer then looks that text up in the memo and
        decodes it with ``orjson.loads`` only on a miss (always, for an array without a
        memo)."""


_INT_RANGE = (-(2**31), 2**31 - 1)
_LONG_RANGE = (-(2**63), 2**63 - 1)
_SIMPLE_LOGICAL_TYPES = frozenset(
    {
        "date",
        "time-millis",
        "time-micros",
        "timestamp-millis",
        "timestamp-micros",
        "local-timestamp-millis",
        "local-timestamp-micros",
    }
)
#: The Python test that picks a union branch, by Avro type.
_BRANCH_TESTS = {
    "null": "{v} is None",
    "boolean": "({v} is True or {v} is False)",
    "int": "type({v}) is int",
    "long": "type({v}) is int",
    "float": "type({v}) is float",
    "double": "type({v}) is float",
    "string": "type({v}) is str",
    "bytes": "type({v}) is bytes",
    "array": "type({v}) is list",
    "map": "type({v}) is dict",
    "record": "type({v}) is dict",
}


class Unsupported(Exception):
    """The schema uses a construct the compiler does not handle; use fastavro for it."""


def _write_long(out: bytearray, value: Any, low: int, high: int) -> None:
    """Zig-zag varint of an int in ``[low, high]``; raise for anything else."""
    if type(value) is not int:
        raise TypeError(f"expected int, got {type(value).__name__}")
    if not low <= value <= high:
        raise ValueError(f"{value} out of range")
    value = (value << 1) ^ (value >> 63)
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


#: Encoded (length-prefixed UTF-8) strings shorter than 64 bytes, by value; shared by every
#: writer of the process, used from one thread. Emptied when it reaches the limit (~13 MB).
_STRINGS: dict[str, bytes] = {}
_STRING_CACHE_LIMIT = 65_536


def _string(value: Any) -> bytes:
    """The Avro encoding of a string not in :data:`_STRINGS` (cached if short); raise for
    anything but a ``str``."""
    if type(value) is not str:
        raise TypeError(f"expected string, got {type(value).__name__}")
    data = value.encode()
    out = bytearray()
    _write_bytes(out, data)
    encoded = bytes(out)
    if len(data) < 64:
        if len(_STRINGS) >= _STRING_CACHE_LIMIT:
            _STRINGS.clear()
        _STRINGS[value] = encoded
    return encoded


def _write_bytes(out: bytearray, data: bytes) -> None:
    """Length-prefixed bytes."""
    size = len(data)
    if size < 64:
        out.append(size << 1)
    else:
        _write_long(out, size, 0, _LONG_RANGE[1])
    out += data


def _write_float(out: bytearray, value: Any, packer: Callable[[float], bytes]) -> None:
    """IEEE float/double, little-endian; ints are accepted as fastavro does."""
    if type(value) not in (float, int):
        raise TypeError(f"expected float, got {type(value).__name__}")
    out += packer(value)


#: JSON text options: a subclass, dataclass or datetime raises instead of being written as the
#: JSON of a plain value.
_EXACT_JSON = (
    orjson.OPT_PASSTHROUGH_SUBCLASS
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_DATETIME
)
#: Item types whose JSON text tells their Avro encoding exactly (floats do not: ``-0.0``, NaN).
_MEMO_TYPES = frozenset(
    {"null", "boolean", "int", "long", "string", "enum", "record", "array", "map"}
)


class ArrayMemo:
    """Encoded arrays of one array field, by the JSON text of their value.

    For values as ``orjson.loads`` returns them, equal ``orjson.dumps`` text means the same
    types and values in the same order, so the same Avro bytes (not for others: NaN is written
    as ``null``, an enum as its value); the writer asks only when told its record is made of
    such values (``json_native``), and only for arrays whose items hold no floats, bytes or
    fixed. The memo turns itself off for an array that seldom repeats (fewer than a quarter of
    the lookups of a window of 4,096 hit: cricket's batsmen change with every ball), tries
    again eight windows later, and empties itself when it holds more than 8 MB.
    """

    __slots__ = ("_resting", "_size", "active", "encoded", "hits", "lookups")

    WINDOW = 4096
    REST_WINDOWS = 8
    MAX_BYTES = 8 << 20
    #: Per entry beyond the two byte strings' lengths: their headers and the dict slot.
    ENTRY_OVERHEAD = 120

    def __init__(self) -> None:
        self.encoded: dict[bytes | None, bytes] = {}
        self.active = True
        self.lookups = 0
        self.hits = 0
        self._resting = 0
        self._size = 0

    def key(self, value: list[Any]) -> bytes | None:
        """The memo key of ``value`` (its exact JSON text), ``None`` while switched off."""
        if not self._lookup():
            return None
        try:
            return orjson.dumps(value, option=_EXACT_JSON)
        except TypeError:  # not JSON-native after all: encode it the long way
            return None

    def text_key(self, text: bytes) -> bytes | None:
        """The memo key of an array still in its JSON ``text``, ``None`` while switched off.

        The same text always decodes to the same value, so it may share the memo with
        :meth:`key`'s canonical texts (equal values written differently only miss)."""
        return text if self._lookup() else None

    def _lookup(self) -> bool:
        """Count a lookup (reviewing the window when it is full); True while switched on."""
        self.lookups += 1
        if self.lookups >= self.WINDOW:
            self._review()
        return self.active

    def store(self, key: bytes, encoded: bytearray) -> None:
        """Remember ``encoded`` (the array's count and items) under ``key``."""
        key = bytes(memoryview(key))  # orjson's bytes keep a 4 KB allocation: keep a copy
        size = len(key) + len(encoded) + self.ENTRY_OVERHEAD
        if self._size + size > self.MAX_BYTES:
            self._forget()
        self.encoded[key] = bytes(encoded)
        self._size += size

    def _review(self) -> None:
        if self.active:
            if self.hits * 4 < self.lookups:
                self.active = False
                self._resting = self.REST_WINDOWS
                self._forget()
        else:
            self._resting -= 1
            self.active = self._resting <= 0
        self.lookups = self.hits = 0

    def _forget(self) -> None:
        self.encoded.clear()
        self._size = 0


def _fail(expected: str, value: Any) -> None:
    raise TypeError(f"expected {expected}, got {type(value).__name__}")


class _Compiler:
    """Emits the source of one writer function, node by node."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.constants: dict[str, Any] = {}
        self.named: dict[str, Any] = {}
        self.counter = 0

    def name(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def constant(self, value: Any) -> str:
        key = self.name("_c")
        self.constants[key] = value
        return key

    def emit(self, line: str, depth: int) -> None:
        self.lines.append("    " * depth + line)

    def node(self, schema: Any, v: str, depth: int) -> None:
        """Emit code that writes the value in variable ``v`` per ``schema``."""
        if isinstance(schema, list):
            self.union(schema, v, depth)
            return
        schema = self.resolve(schema)
        kind = schema["type"]
        logical = schema.get("logicalType")
        if logical is not None and logical not in _SIMPLE_LOGICAL_TYPES:
            raise Unsupported(f"logical type {logical}")
        if kind in ("record", "enum", "fixed"):
            self.named[schema["name"]] = schema
        getattr(self, "type_" + kind, self.unknown)(schema, v, depth)

    def unknown(self, schema: dict[str, Any], v: str, depth: int) -> None:
        raise Unsupported(f"type {schema['type']!r}")

    def type_null(self, schema: dict[str, Any], v: str, depth: int) -> None:
        self.emit(f"if {v} is not None: _fail('null', {v})", depth)

    def type_boolean(self, schema: dict[str, Any], v: str, depth: int) -> None:
        self.emit(f"if {v} is True: append(1)", depth)
        self.emit(f"elif {v} is False: append(0)", depth)
        self.emit(f"else: _fail('boolean', {v})", depth)

    def type_int(self, schema: dict[str, Any], v: str, depth: int) -> None:
        low, high = _INT_RANGE if schema["type"] == "int" else _LONG_RANGE
        self.emit(f"if type({v}) is int and 0 <= {v} < 8192:", depth)
        self.emit(f"if {v} < 64: append({v} << 1)", depth + 1)
        # Two bytes: the zig-zag value 2v (< 2**14) in 7-bit groups, low group first.
        self.emit(f"else: append(({v} << 1) & 0x7F | 0x80); append({v} >> 6)", depth + 1)
        self.emit(f"else: _write_long(out, {v}, {low}, {high})", depth)

    type_long = type_int

    def type_float(self, schema: dict[str, Any], v: str, depth: int) -> None:
        fmt = "<f" if schema["type"] == "float" else "<d"
        self.emit(f"_write_float(out, {v}, {self.constant(struct.Struct(fmt).pack)})", depth)

    type_double = type_float

    def type_string(self, schema: dict[str, Any], v: str, depth: int) -> None:
        encoded = self.name("s")
        # Only an exact str may come from the cache (a subclass or a StrEnum compares equal).
        self.emit(f"{encoded} = strings({v}) if type({v}) is str else None", depth)
        self.emit(f"if {encoded} is None: {encoded} = _string({v})", depth)
        self.emit(f"out += {encoded}", depth)

    def type_bytes(self, schema: dict[str, Any], v: str, depth: int) -> None:
        self.emit(f"if type({v}) is not bytes: _fail('bytes', {v})", depth)
        self.emit(f"_write_bytes(out, {v})", depth)

    def type_fixed(self, schema: dict[str, Any], v: str, depth: int) -> None:
        size = int(schema["size"])
        self.emit(f"if type({v}) is not bytes or len({v}) != {size}: _fail('fixed', {v})", depth)
        self.emit(f"out += {v}", depth)

    def type_enum(self, schema: dict[str, Any], v: str, depth: int) -> None:
        encoded = {symbol: bytes([index << 1]) for index, symbol in enumerate(schema["symbols"])}
        if len(encoded) > 64:
            raise Unsupported("enum with more than 64 symbols")
        self.emit(f"out += {self.constant(encoded)}[{v}]", depth)

    def type_array(self, schema: dict[str, Any], v: str, depth: int) -> None:
        if not self.json_exact(schema["items"]):
            self.emit(f"if type({v}) is _Raw: {v} = _loads(bytes({v}))", depth)
            self.emit(f"if type({v}) is not list: _fail('array', {v})", depth)
            self.emit(f"if {v}:", depth)
            self.array_items(schema, v, depth + 1)
            self.emit("append(0)", depth)
            return
        memo = self.constant(ArrayMemo())
        key, encoded, start, text = (self.name(n) for n in ("key", "enc", "start", "text"))
        # JSON text left undecoded (msgspec.Raw) is its own key; it is decoded on a miss only.
        self.emit(f"{key} = {encoded} = None", depth)
        self.emit(f"if type({v}) is _Raw:", depth)
        self.emit(f"{text} = bytes({v})", depth + 1)
        self.emit(f"if {text} == b'[]': {v} = []", depth + 1)  # never looked up, as a list
        self.emit("else:", depth + 1)
        self.emit(f"{key} = {memo}.text_key({text})", depth + 2)
        self.emit(f"{encoded} = {memo}.encoded.get({key})", depth + 2)
        self.emit(f"if {encoded} is None: {v} = _loads({text})", depth + 2)
        self.emit(f"elif json_native and type({v}) is list and {v}:", depth)
        self.emit(f"{key} = {memo}.key({v})", depth + 1)
        self.emit(f"{encoded} = {memo}.encoded.get({key})", depth + 1)
        self.emit(f"if {encoded} is not None:", depth)
        self.emit(f"{memo}.hits += 1", depth + 1)
        self.emit(f"out += {encoded}", depth + 1)
        self.emit("else:", depth)
        self.emit(f"if type({v}) is not list: _fail('array', {v})", depth + 1)
        self.emit(f"if {v}:", depth + 1)
        self.emit(f"{start} = len(out)", depth + 2)
        self.array_items(schema, v, depth + 2)
        self.emit(f"if {key} is not None: {memo}.store({key}, out[{start}:])", depth + 2)
        self.emit("append(0)", depth)

    def array_items(self, schema: dict[str, Any], v: str, depth: int) -> None:
        """The count and the items of the non-empty list in ``v`` (without the end mark)."""
        item = self.name("item")
        self.emit(f"_write_long(out, len({v}), 0, {_LONG_RANGE[1]})", depth)
        self.emit(f"for {item} in {v}:", depth)
        self.node(schema["items"], item, depth + 1)

    def json_exact(self, schema: Any) -> bool:
        """True when values of ``schema`` hold nothing whose JSON text is inexact (floats,
        bytes, fixed): their JSON text then tells their encoding."""
        if isinstance(schema, list):
            return all(self.json_exact(branch) for branch in schema)
        schema = self.resolve(schema)
        kind = schema["type"]
        if kind not in _MEMO_TYPES:
            return False
        if kind == "record":
            return all(self.json_exact(field["type"]) for field in schema["fields"])
        if kind == "array":
            return self.json_exact(schema["items"])
        if kind == "map":
            return self.json_exact(schema["values"])
        return True

    def type_map(self, schema: dict[str, Any], v: str, depth: int) -> None:
        key, item = self.name("key"), self.name("item")
        self.emit(f"if type({v}) is not dict: _fail('map', {v})", depth)
        self.emit(f"if {v}:", depth)
        self.emit(f"_write_long(out, len({v}), 0, {_LONG_RANGE[1]})", depth + 1)
        self.emit(f"for {key}, {item} in {v}.items():", depth + 1)
        self.type_string({"type": "string"}, key, depth + 2)
        self.node(schema["values"], item, depth + 2)
        self.emit("append(0)", depth)

    def type_record(self, schema: dict[str, Any], v: str, depth: int) -> None:
        self.emit(f"if type({v}) is not dict: _fail('record', {v})", depth)
        for field in schema["fields"]:
            value = self.name("v")
            if "default" in field:
                default = self.constant(field["default"])
                self.emit(f"{value} = {v}.get({field['name']!r}, {default})", depth)
            else:
                self.emit(f"{value} = {v}[{field['name']!r}]", depth)
            self.node(field["type"], value, depth)

    def union(self, branches: list[Any], v: str, depth: int) -> None:
        if len(branches) > 64:
            raise Unsupported("union with more than 64 branches")
        tests = [_BRANCH_TESTS.get(self.kind(branch)) for branch in branches]
        if None in tests or len(set(tests)) != len(tests):
            raise Unsupported(f"union {branches!r}: branches not distinguishable by Python type")
        for index, (branch, test) in enumerate(zip(branches, tests, strict=True)):
            keyword = "if" if index == 0 else "elif"
            self.emit(f"{keyword} {str(test).format(v=v)}:", depth)
            self.emit(f"append({index << 1})", depth + 1)
            if test != _BRANCH_TESTS["null"]:
                self.node(branch, v, depth + 1)
        self.emit(f"else: _fail('one of the union', {v})", depth)

    def kind(self, schema: Any) -> str:
        """The Avro type of a union branch, resolving named references."""
        schema = self.resolve(schema)
        return str(schema["type"]) if isinstance(schema, dict) else "union"

    def resolve(self, schema: Any) -> Any:
        """``schema``, a type name replaced by its definition (a primitive by
        ``{"type": name}``)."""
        if isinstance(schema, str):
            return self.named.get(schema, {"type": schema})
        return schema


def compile_writer(parsed_schema: dict[str, Any]) -> BodyWriter:
    """A writer of records of ``parsed_schema`` (fastavro-parsed); raise :class:`Unsupported`."""
    compiler = _Compiler()
    compiler.emit("def write(out, record, json_native=False):", 0)
    compiler.emit("append = out.append", 1)
    compiler.node(parsed_schema, "record", 1)
    namespace: dict[str, Any] = {
        "_write_long": _write_long,
        "_write_bytes": _write_bytes,
        "_string": _string,
        "strings": _STRINGS.get,
        "_write_float": _write_float,
        "_fail": _fail,
        "_Raw": msgspec.Raw,
        "_loads": orjson.loads,
        **compiler.constants,
    }
    exec(compile("\n".join(compiler.lines), "<avro writer>", "exec"), namespace)
    writer: BodyWriter = namespace["write"]
    return writer
