"""Single-object encoding, fingerprints, decoding with schemas/ alone, schema evolution."""

from __future__ import annotations

import io
import json
import tracemalloc
from enum import StrEnum
from pathlib import Path
from typing import Any

import fastavro
import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingester.convert import load_converters
from ingester.convert.samples import protocol_example
from ingester.encode import (
    DecodeFailed,
    Decoder,
    EncodeFailed,
    SingleObjectEncoder,
    compiled,
    load_schemas,
)
from ingester.encode.compiled import ArrayMemo, Unsupported, compile_writer
from ingester.encode.schemas import parse_avro_schema

REPO_SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
SPORTS = ("soccer", "cricket")
SCHEMAS = load_schemas()  # every sport, as the daemon finds them
SOCCER = SCHEMAS["soccer"]
SOCCER_WRITER = compile_writer(SOCCER.parsed)
WRITERS = {sport: compile_writer(schema.parsed) for sport, schema in SCHEMAS.items()}
DECODER = Decoder(REPO_SCHEMAS)


def crc64_avro(data: bytes) -> int:
    """CRC-64-AVRO exactly as the Avro specification's reference code computes it."""
    empty = 0xC15D213AA4D7A795
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (empty & -(fp & 1))
        table.append(fp)
    fp = empty
    for byte in data:
        fp = (fp >> 8) ^ table[(fp ^ byte) & 0xFF]
    return fp


def record_of(sport: str) -> dict[str, Any]:
    converter = load_converters().get(sport)
    assert converter is not None
    return converter.convert("update", protocol_example(sport), 1_795_881_792_500)


def test_crc64_reference_vector() -> None:
    # The Avro project's schema-tests: the fingerprint of "int" is 8247732601305521295.
    assert crc64_avro(b'"int"') == 8247732601305521295
    assert parse_avro_schema({"type": "record", "name": "R", "fields": []}).fingerprint == (
        crc64_avro(b'{"name":"R","type":"record","fields":[]}').to_bytes(8, "little")
    )


@pytest.mark.parametrize("sport", SPORTS)
def test_header_is_magic_then_little_endian_fingerprint(sport: str) -> None:
    schema = load_schemas()[sport]
    value = SingleObjectEncoder(schema).encode(record_of(sport))
    expected = crc64_avro(schema.canonical_form.encode())
    assert value[:2] == b"\xc3\x01"
    assert value[2:10] == expected.to_bytes(8, "little")
    assert schema.fingerprint_int == expected
    body = io.BytesIO()
    fastavro.schemaless_writer(body, schema.parsed, record_of(sport))
    assert value[10:] == body.getvalue()


@pytest.mark.parametrize("sport", SPORTS)
def test_round_trip(sport: str) -> None:
    record = record_of(sport)
    value = SingleObjectEncoder(load_schemas()[sport]).encode(record)
    decoded = Decoder(REPO_SCHEMAS).decode(value)
    assert decoded.schema_name == load_schemas()[sport].name
    assert decoded.record == record
    with_types = Decoder(REPO_SCHEMAS, logical_types=True).decode(value).record
    assert with_types["updated_at"].isoformat(timespec="milliseconds") == (
        protocol_example(sport)["updated_at"].replace("Z", "+00:00")
    )


def test_encoder_reuses_its_buffer_without_leaking_state() -> None:
    encoder = SingleObjectEncoder(load_schemas()["soccer"])
    big, small = record_of("soccer"), record_of("soccer")
    big["events"] = big["events"] * 5
    first = encoder.encode(big)
    assert encoder.encode(small) != first
    assert Decoder(REPO_SCHEMAS).decode(encoder.encode(small)).record == small


@pytest.mark.parametrize("sport", SPORTS)
def test_a_consumer_with_only_the_avsc_files_decodes(sport: str) -> None:
    """No project code on the reading side: json, fastavro and the spec's CRC."""
    value = SingleObjectEncoder(load_schemas()[sport]).encode(record_of(sport))
    by_fingerprint = {}
    for path in REPO_SCHEMAS.glob("*.avsc"):
        parsed = fastavro.parse_schema(json.loads(path.read_text()))
        canonical = fastavro.schema.to_parsing_canonical_form(parsed)
        by_fingerprint[crc64_avro(canonical.encode()).to_bytes(8, "little")] = parsed
    assert value[:2] == b"\xc3\x01"
    record = fastavro.schemaless_reader(io.BytesIO(value[10:]), by_fingerprint[value[2:10]], None)
    assert record["match_id"] == protocol_example(sport)["match_id"]
    assert record["op"] == "update"


@pytest.mark.parametrize("sport", SPORTS)
def test_reader_with_an_added_field_reads_old_records(sport: str) -> None:
    old = load_schemas()[sport]
    value = SingleObjectEncoder(old).encode(record_of(sport))
    newer = json.loads(json.dumps(old.definition))
    newer["fields"].append(
        {"name": "venue", "type": ["null", "string"], "default": None, "doc": "Stadium."}
    )
    newer["fields"][0]["doc"] = "docs may change freely"
    reader = fastavro.parse_schema(newer)
    record = fastavro.schemaless_reader(io.BytesIO(value[10:]), old.parsed, reader)
    assert record["venue"] is None
    assert record["match_id"] == protocol_example(sport)["match_id"]


def test_old_reader_reads_a_future_op_symbol_as_the_default() -> None:
    old = load_schemas()["soccer"]
    future = json.loads(json.dumps(old.definition))
    future["fields"][2]["type"]["symbols"].append("correction")
    record = record_of("soccer") | {"op": "correction"}
    body = io.BytesIO()
    fastavro.schemaless_writer(body, fastavro.parse_schema(future), record)
    body.seek(0)
    assert fastavro.schemaless_reader(body, fastavro.parse_schema(future), old.parsed)["op"] == (
        "update"
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"match_id": 2**70}, "match_id"),
        ({"seq": -(2**64)}, "seq"),
        ({"score": {"home": 2**40, "away": 0}}, "home"),
        ({"op": "delta"}, "op"),
        ({"home": b"Arsenal"}, "home"),
    ],
)
def test_values_avro_rejects_raise_encode_failed(change: dict[str, Any], message: str) -> None:
    record = record_of("soccer") | change
    with pytest.raises(EncodeFailed, match=message) as raised:
        SingleObjectEncoder(load_schemas()["soccer"]).encode(record)
    assert "\n" not in str(raised.value)


def test_unknown_fingerprint_and_garbage_fail_clearly() -> None:
    decoder = Decoder(REPO_SCHEMAS)
    with pytest.raises(DecodeFailed, match="unknown schema fingerprint 0102030405060708"):
        decoder.decode(b"\xc3\x01\x01\x02\x03\x04\x05\x06\x07\x08\x00")
    with pytest.raises(DecodeFailed, match="not an Avro single-object or registry value"):
        decoder.decode(b'{"op": "update"}')
    value = SingleObjectEncoder(load_schemas()["cricket"]).encode(record_of("cricket"))
    with pytest.raises(DecodeFailed, match="CricketMatchState"):
        decoder.decode(value[:-3])
    with pytest.raises(DecodeFailed, match="registry schema id 5 not known"):
        decoder.decode(b"\x00\x00\x00\x00\x05\x02")


def test_uncompilable_schema_falls_back_to_fastavro() -> None:
    schema = parse_avro_schema(
        {
            "type": "record",
            "name": "Odd",
            "fields": [{"name": "x", "type": ["float", "double"]}],
        }
    )
    with pytest.raises(Unsupported):
        compile_writer(schema.parsed)
    value = SingleObjectEncoder(schema).encode({"x": 1.5})
    assert fastavro.schemaless_reader(io.BytesIO(value[10:]), schema.parsed, None) == {"x": 1.5}


_PRIMITIVES: dict[str, st.SearchStrategy[Any]] = {
    "null": st.none(),
    "boolean": st.booleans(),
    "int": st.integers(min_value=-(2**31), max_value=2**31 - 1),
    "long": st.integers(min_value=-(2**63), max_value=2**63 - 1),
    "float": st.floats(allow_nan=False, width=32),
    "double": st.floats(allow_nan=False),
    "string": st.text(max_size=80),
    "bytes": st.binary(max_size=80),
}


def avro_values(schema: Any, named: dict[str, Any] | None = None) -> st.SearchStrategy[Any]:
    """Any value of the fastavro-parsed ``schema`` (not only plausible ones); a type this
    does not know fails loudly, so a new sport's schema cannot slip through untested."""
    named = {} if named is None else named
    if isinstance(schema, str):
        if schema in _PRIMITIVES:
            return _PRIMITIVES[schema]
        return st.deferred(lambda: named[schema])  # a named type defined earlier
    if isinstance(schema, list):
        return st.one_of([avro_values(branch, named) for branch in schema])
    kind = schema["type"]
    if kind == "record":
        fields = {f["name"]: avro_values(f["type"], named) for f in schema["fields"]}
        named[schema["name"]] = strategy = st.fixed_dictionaries(fields)
        return strategy
    if kind == "enum":
        named[schema["name"]] = strategy = st.sampled_from(schema["symbols"])
        return strategy
    if kind == "array":
        return st.lists(avro_values(schema["items"], named), max_size=5)
    if kind == "map":
        return st.dictionaries(
            st.text(max_size=20), avro_values(schema["values"], named), max_size=5
        )
    if isinstance(kind, str) and kind in _PRIMITIVES:  # with a logicalType
        return _PRIMITIVES[kind]
    raise AssertionError(f"no value strategy for Avro type {schema!r}: add one")


@pytest.mark.parametrize("sport", sorted(SCHEMAS))
@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_compiled_writer_is_byte_identical_to_fastavro(sport: str, data: st.DataObject) -> None:
    schema = SCHEMAS[sport]
    record = data.draw(avro_values(schema.parsed))
    reference = io.BytesIO()
    fastavro.schemaless_writer(reference, schema.parsed, record)
    writer = WRITERS[sport]
    # The second time the short strings come from the cache; with json_native the arrays
    # come from the array memos.
    for json_native in (False, False, True, True):
        out = bytearray()
        writer(out, record, json_native)
        assert bytes(out) == reference.getvalue()
    assert DECODER.decode(b"\xc3\x01" + schema.fingerprint + bytes(out)).record == record


def test_string_cache_serves_exact_strings_only() -> None:
    class Name(str):
        pass

    record = record_of("soccer")
    SOCCER_WRITER(bytearray(), record)  # its strings are now cached
    for odd in (Name(record["home"]), StrEnum("Team", {"HOME": record["home"]}).HOME):
        with pytest.raises(TypeError, match="expected string"):
            SOCCER_WRITER(bytearray(), record | {"home": odd})


def test_string_cache_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compiled, "_STRING_CACHE_LIMIT", 5)
    compiled._STRINGS.clear()
    record = record_of("soccer")
    reference = io.BytesIO()
    fastavro.schemaless_writer(reference, SOCCER.parsed, record)
    for _ in range(3):
        out = bytearray()
        SOCCER_WRITER(out, record)
        assert bytes(out) == reference.getvalue()
        assert 0 < len(compiled._STRINGS) <= 5


def _memos(writer: Any) -> list[ArrayMemo]:
    return [value for value in writer.__globals__.values() if isinstance(value, ArrayMemo)]


def test_only_soccer_events_and_cricket_arrays_get_a_memo() -> None:
    assert len(_memos(SOCCER_WRITER)) == 1  # events; no other arrays
    assert len(_memos(compile_writer(load_schemas()["cricket"].parsed))) == 3
    with_floats = parse_avro_schema(
        {"type": "record", "name": "F", "fields": [
            {"name": "xs", "type": {"type": "array", "items": "double"}},
            {"name": "ys", "type": {"type": "array", "items": ["null", "bytes"]}},
        ]}
    )  # fmt: skip
    assert _memos(compile_writer(with_floats.parsed)) == []  # their JSON text is not exact


def test_the_array_memo_serves_only_the_same_json_types() -> None:
    record = record_of("soccer")
    assert record["events"]
    SOCCER_WRITER(bytearray(), record, True)
    (memo,) = _memos(SOCCER_WRITER)
    hits = memo.hits
    SOCCER_WRITER(bytearray(), record | {"events": [dict(e) for e in record["events"]]}, True)
    assert memo.hits == hits + 1  # an equal list, not the same object
    for odd in (True, float(record["events"][0]["minute"])):  # equal to the int in Python
        events = [record["events"][0] | {"minute": odd}, *record["events"][1:]]
        with pytest.raises(TypeError, match="expected int"):
            SOCCER_WRITER(bytearray(), record | {"events": events}, True)
    assert memo.hits == hits + 1


def test_the_array_memo_is_not_used_unless_the_values_are_json_native() -> None:
    record = record_of("soccer")
    (memo,) = _memos(SOCCER_WRITER)
    lookups = memo.lookups
    SOCCER_WRITER(bytearray(), record)
    assert memo.lookups == lookups


def test_the_array_memo_rests_while_arrays_seldom_repeat(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ArrayMemo, "WINDOW", 8)
    monkeypatch.setattr(ArrayMemo, "REST_WINDOWS", 2)
    memo = ArrayMemo()
    keys = [memo.key([n]) for n in range(8)]  # eight different arrays: no hits
    assert None not in keys[:7]
    assert keys[7] is None
    assert not memo.active
    assert memo.encoded == {}
    assert {memo.key([1]) for _ in range(15)} == {None}  # resting for two windows
    assert memo.key([1]) == b"[1]"
    assert memo.active


def test_the_array_memo_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ArrayMemo, "MAX_BYTES", 1000)
    memo = ArrayMemo()
    for n in range(40):
        memo.store(b"[%d]" % n, bytearray(30))
        stored = sum(
            len(k or b"") + len(v) + ArrayMemo.ENTRY_OVERHEAD for k, v in memo.encoded.items()
        )
        assert 0 < stored <= 1000


def test_the_array_memo_holds_about_what_it_counts() -> None:
    events = record_of("soccer")["events"]
    memo = ArrayMemo()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for n in range(500):
            key = memo.key([*events, {"id": n}])
            assert key is not None
            memo.store(key, bytearray(len(key) // 2))
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(memo.encoded) == 500
    assert held < 1.5 * memo._size  # orjson's own bytes would hold a 4 KB block each


def test_values_the_compiled_writer_does_not_take_go_through_fastavro() -> None:
    record = record_of("soccer") | {"events": tuple(record_of("soccer")["events"])}
    value = SingleObjectEncoder(SOCCER).encode(record)
    assert DECODER.decode(value).record == record_of("soccer")


def test_an_array_still_in_its_json_text_is_written_like_the_list() -> None:
    record = record_of("soccer")
    text = json.dumps(record["events"]).encode()  # spaced: not orjson's canonical text
    raw = msgspec.Raw(text)
    as_list, as_text = bytearray(), bytearray()
    SOCCER_WRITER(as_list, record, True)
    SOCCER_WRITER(as_text, record | {"events": raw})  # JSON text is JSON-native by nature
    assert as_text == as_list
    (memo,) = _memos(SOCCER_WRITER)
    assert memo.encoded[text]  # remembered under the text itself
    hits = memo.hits
    again = bytearray()
    SOCCER_WRITER(again, record | {"events": msgspec.Raw(text)})
    assert memo.hits == hits + 1
    assert again == as_list


@pytest.mark.parametrize(
    "text", [b'[{"id": 1,}]', b'["\xff"]', b"[1e999]", b"null", b'{"id": 1}', b"[[1]]"]
)
def test_array_text_the_writer_cannot_take_is_refused_and_never_remembered(text: bytes) -> None:
    (memo,) = _memos(SOCCER_WRITER)
    with pytest.raises((ValueError, TypeError)):
        SOCCER_WRITER(bytearray(), record_of("soccer") | {"events": msgspec.Raw(text)})
    assert text not in memo.encoded


def test_an_empty_array_in_json_text_is_not_looked_up() -> None:
    (memo,) = _memos(SOCCER_WRITER)
    lookups = memo.lookups
    as_text, as_list = bytearray(), bytearray()
    SOCCER_WRITER(as_text, record_of("soccer") | {"events": msgspec.Raw(b"[]")})
    SOCCER_WRITER(as_list, record_of("soccer") | {"events": []}, True)
    assert as_text == as_list
    assert memo.lookups == lookups  # as for an empty list: it would never hit


def test_an_array_without_a_memo_takes_its_json_text_too() -> None:
    schema = parse_avro_schema(
        {"type": "record", "name": "F", "fields": [
            {"name": "xs", "type": {"type": "array", "items": "double"}},
        ]}
    )  # fmt: skip
    writer = compile_writer(schema.parsed)
    assert _memos(writer) == []
    as_text, as_list = bytearray(), bytearray()
    writer(as_text, {"xs": msgspec.Raw(b"[1.5, -0.0, 2]")})
    writer(as_list, {"xs": [1.5, -0.0, 2]})
    assert as_text == as_list
