"""Fuzzing the whole frame path: ``FrameProcessor.process`` on mutated protocol frames.

Hypothesis builds protocol-shaped frames (the contract's soccer and cricket examples inside a
``snapshot``/``update``/``error`` envelope), mutates them (wrong types, missing keys, huge
strings, deep nesting, NaN, numbers out of range, non-UTF-8 bytes, truncation) and feeds the
bytes through the real processor with the real codecs. Every message must end as exactly one
of the outcomes the tolerance table allows: a decodable record on the data topic, a dead
letter with a known stage and the raw bytes kept, or a counted skip (unknown ``op``, a match
not followed here, an ``error`` frame). Never an exception, and never the converter's
"failed unexpectedly" path (that is a bug caught by the safety net, not a classification).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from ingester.codecs import build_codecs, classify_error
from ingester.convert.samples import protocol_example
from ingester.encode import Decoder
from ingester.observe.metrics import Metrics
from ingester.pipeline import FrameProcessor
from ingester.settings import load_settings
from ingester.upstream.subscriptions import SubscriptionBook
from tests.mutations import mutate

FOLLOWED = (protocol_example("soccer")["match_id"], protocol_example("cricket")["match_id"])
NOW = 1_800_000_000.0
STAGES = {b"decode", b"validate", b"convert", b"encode"}
CODECS, _ = build_codecs(load_settings())
DECODER = Decoder()


class _Errors(logging.Handler):
    """Collects ERROR records of the ``ingester`` loggers (an unexpected converter failure)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def errors() -> Iterator[_Errors]:
    handler = _Errors()
    logger = logging.getLogger("ingester")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def _processor(lazy_decode: bool = True) -> tuple[FrameProcessor, Metrics]:
    metrics = Metrics(CollectorRegistry())
    book = SubscriptionBook(per_connection=10, max_matches=100, refused_retry=60.0)
    for match_id in FOLLOWED:
        book.follow(match_id)
    book.connected(0)
    codecs = CODECS if lazy_decode else CODECS.checked_only()
    processor = FrameProcessor(book, codecs, classify_error, metrics, "scores", "dlq", "fuzz")
    return processor, metrics


SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.integers(min_value=-(10**300), max_value=10**300)  # orjson: a float; msgspec: an int
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
    | st.sampled_from(["", "snapshot", "update", "2026-11-28T16:03:12.120Z", "2026-02-30T25:00Z"])
    | st.builds(lambda n: "x" * n, st.sampled_from([10_000, 200_000, 1_000_000]))
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)


def _nested(depth: int) -> Any:
    value: Any = 1
    for level in range(depth):
        value = [value] if level % 2 else {"n": value}
    return value


DEEP = st.builds(_nested, st.integers(min_value=10, max_value=120))


@st.composite
def frames(draw: st.DrawFn) -> bytes:
    """A protocol-shaped frame, mutated at the JSON level and then maybe at the byte level."""
    sport = draw(st.sampled_from(["soccer", "cricket"]))
    data: Any = protocol_example(sport)
    if draw(st.booleans()):
        data["match_id"] = draw(st.sampled_from([*FOLLOWED, 7, 0, -1]))
    if draw(st.integers(min_value=0, max_value=8)) == 0:
        data["sport"] = draw(st.sampled_from(["curling", "SOCCER", "", "soccer", "cricket"]))
    envelope: Any = {
        "op": draw(st.sampled_from(["snapshot", "update", "error", "score_push", ""])),
        "match_id": data["match_id"],
        "data": data,
    }
    if envelope["op"] == "error":
        envelope["code"] = draw(st.sampled_from(["sport_not_enabled", "rate_limited", "odd"]))
        envelope["error"] = draw(st.text(max_size=40))
    mutate(draw, envelope, VALUES, max_edits=5, nested=DEEP)
    if draw(st.integers(min_value=0, max_value=30)) == 0:
        envelope = draw(VALUES)
    # json (not orjson) so NaN/Infinity and surrogates end up on the wire as a server might
    # send them; ensure_ascii=False keeps real UTF-8 to be broken below.
    raw = json.dumps(envelope, allow_nan=True, ensure_ascii=draw(st.booleans()))
    encoded = raw.encode("utf-8", errors="surrogatepass")
    mutation = draw(st.sampled_from(["none"] * 6 + ["truncate", "bytes", "deep"]))
    if mutation == "truncate" and encoded:
        encoded = encoded[: draw(st.integers(min_value=0, max_value=len(encoded) - 1))]
    elif mutation == "bytes":
        position = draw(st.integers(min_value=0, max_value=len(encoded)))
        junk = draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x00", b"\xfe\xff"]))
        encoded = encoded[:position] + junk + encoded[position:]
    elif mutation == "deep":
        depth = draw(st.sampled_from([200, 1024, 5000]))
        encoded = b'{"op":"update","match_id":%d,"data":%s%s}' % (
            FOLLOWED[0],
            b"[" * depth,
            b"]" * depth,
        )
    return encoded


def _outcomes(metrics: Metrics) -> float:
    """How many messages the processor has accounted for, any way."""
    total = 0.0
    for family in metrics.registry.collect():
        if family.name in (
            "sportrix_ingester_dlq_records",
            "sportrix_ingester_skipped_frames",
            "sportrix_ingester_error_frames",
        ):
            total += sum(s.value for s in family.samples if s.name.endswith("_total"))
    return total


#: Up to four fuzzed messages through one processor, 600 times.
FUZZED = settings(
    max_examples=600,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
MESSAGES = st.lists(frames(), min_size=1, max_size=4)


@FUZZED
@given(messages=MESSAGES)
def test_every_frame_is_a_record_a_dead_letter_or_a_counted_skip(
    messages: list[bytes], errors: _Errors
) -> None:
    processor, metrics = _processor()
    errors.records.clear()
    records = 0
    for raw in messages:
        before = _outcomes(metrics)
        record, actions = processor.process(raw, NOW, 1.0, 0)
        assert isinstance(actions, list)
        accounted = _outcomes(metrics) - before
        if record is None:
            assert accounted == 1, f"a skip must be counted once: {raw[:200]!r}"
            continue
        headers = dict(record.headers)
        if record.topic == "dlq":
            assert accounted == 1
            assert headers["stage"] in STAGES, headers
            assert record.value == raw, "a dead letter keeps the raw bytes"
            assert b"\n" not in headers["error"]
            assert len(headers["error"]) <= 512 * 4
        else:
            assert record.topic == "scores"
            assert accounted == 0
            records += 1
            decoded = DECODER.decode(record.value).record
            assert record.key == str(decoded["match_id"]).encode()
            assert decoded["match_id"] in FOLLOWED
            assert headers["sport"] == decoded["sport"].encode()
            for value in (decoded.get("seq"), decoded.get("updated_at")):
                assert not (isinstance(value, float) and math.isnan(value))
    unexpected = [r.getMessage() for r in errors.records]
    assert not unexpected, f"a frame reached the converter's unexpected-failure net: {unexpected}"


def _everything(processor: FrameProcessor, metrics: Metrics, messages: list[bytes]) -> Any:
    """What the processor made of ``messages``: records, actions and every metric sample."""
    made = []
    for raw in messages:
        record, actions = processor.process(raw, NOW, 1.0, 0)
        made.append((record, actions))
    processor.publish_counts()
    samples = sorted(
        (sample.name, sorted(sample.labels.items()), sample.value)
        for family in metrics.registry.collect()
        for sample in family.samples
        if not sample.name.endswith("_created")  # the time a series was first seen
    )
    return made, samples


@FUZZED
@given(messages=MESSAGES)
def test_the_lazy_decoder_changes_no_record_no_error_and_no_count(
    messages: list[bytes], errors: _Errors
) -> None:
    errors.records.clear()
    lazy = _everything(*_processor(lazy_decode=True), messages)
    full = _everything(*_processor(lazy_decode=False), messages)
    assert lazy == full
    assert not errors.records


@pytest.mark.parametrize("depth", [1000, 1100, 3000])
def test_deep_nesting_goes_the_same_way_with_the_lazy_decoder(depth: int, errors: _Errors) -> None:
    # msgspec gives up with RecursionError (Python's limit), orjson at 1,024 levels.
    example = protocol_example("soccer")
    valid = orjson.dumps({"op": "update", "match_id": example["match_id"], "data": example})
    deep = b"[" * depth + b"]" * depth
    competition = b'"competition":"%s"' % example["competition"].encode()
    messages = [
        valid.replace(b'"op":"update"', b'"op":' + deep),
        valid.replace(competition, b'"competition":' + deep),
        valid.replace(b'"events":[', b'"events":[' + deep + b","),
        valid.replace(b'"score":{', b'"score":{"junk":' + deep + b","),
    ]
    assert all(message != valid for message in messages)
    errors.records.clear()
    lazy = _everything(*_processor(lazy_decode=True), messages)
    full = _everything(*_processor(lazy_decode=False), messages)
    assert lazy == full
    assert not errors.records


def test_the_strategies_reach_every_outcome() -> None:
    """The fuzzer is not blind: its frames produce records, each stage and each skip."""
    processor, _ = _processor()
    seen: set[str] = set()

    # Derandomized: "convert" (an unknown sport) is rare enough that a random run of 400
    # missed it about one time in eight; this fixed run of 1,000 reaches it.
    @settings(max_examples=1000, deadline=None, database=None, derandomize=True)
    @given(frames())
    def run(raw: bytes) -> None:
        record, _ = processor.process(raw, NOW, 1.0, 0)
        if record is None:
            seen.add("skip")
        elif record.topic == "dlq":
            seen.add(dict(record.headers)["stage"].decode())
        else:
            seen.add("record")

    run()
    assert {"record", "skip", "decode", "validate", "convert"} <= seen, seen
