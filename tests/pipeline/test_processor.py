"""The frame processor: every message ends as a record, a dead letter or a counted skip."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry

from ingester import pipeline
from ingester.codecs import SportCodecImpl, build_codecs, classify_error
from ingester.convert.samples import protocol_example
from ingester.encode import Decoder
from ingester.observe.metrics import ERROR_CODES, Metrics
from ingester.pipeline import FrameProcessor
from ingester.settings import load_settings
from ingester.upstream.subscriptions import MatchState, Subscribe, SubscriptionBook

SOCCER_ID = protocol_example("soccer")["match_id"]
CRICKET_ID = protocol_example("cricket")["match_id"]
NOW = 1_800_000_000.0


def frame(op: str, example: str = "soccer", **changes: Any) -> bytes:
    data = protocol_example(example)
    data.update(changes)
    return orjson.dumps({"op": op, "match_id": data["match_id"], "data": data})


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return value or 0.0


@pytest.fixture
def metrics() -> Metrics:
    return Metrics(CollectorRegistry())


@pytest.fixture
def book() -> SubscriptionBook:
    b = SubscriptionBook(per_connection=10, max_matches=100, refused_retry=60.0)
    b.follow(SOCCER_ID)
    b.follow(CRICKET_ID)
    b.connected(0)
    return b


@pytest.fixture
def processor(book: SubscriptionBook, metrics: Metrics) -> FrameProcessor:
    codecs, _ = build_codecs(load_settings())
    return FrameProcessor(book, codecs, classify_error, metrics, "scores", "dlq", "pod-1")


def test_snapshot_becomes_a_keyed_record_with_headers(
    processor: FrameProcessor, book: SubscriptionBook, metrics: Metrics
) -> None:
    record, actions = processor.process(frame("snapshot"), NOW, 1.0, 0)
    assert record is not None
    assert actions == []
    assert record.topic == "scores"
    assert record.key == str(SOCCER_ID).encode()
    headers = dict(record.headers)
    assert headers["sport"] == b"soccer"
    assert headers["op"] == b"snapshot"
    assert headers["schema"] == Decoder().decode(record.value).schema_name.encode()
    assert headers["schema"].startswith(b"com.sportrix")
    assert headers["producer"] == b"pod-1"
    decoded = Decoder().decode(record.value).record
    assert decoded["match_id"] == SOCCER_ID
    assert decoded["op"] == "snapshot"
    assert decoded["received_at"] == int(NOW * 1000)
    assert decoded["score"] == {"home": 1, "away": 0}
    assert record.updated_at_ms == decoded["updated_at"]
    assert book.get(SOCCER_ID).state is MatchState.ACTIVE  # type: ignore[union-attr]
    processor.publish_counts()
    assert sample(metrics, "sportrix_ingester_frames_total", sport="soccer", op="snapshot") == 1


def test_frames_are_counted_by_sport_and_op_each_once(
    processor: FrameProcessor, metrics: Metrics
) -> None:
    for _ in range(3):
        processor.process(frame("update", seq=None), NOW, 1.0, 0)
    processor.process(frame("update", sport="curling"), NOW, 1.0, 0)
    processor.process(frame("snapshot", "cricket"), NOW, 1.0, 0)
    assert sample(metrics, "sportrix_ingester_frames_total", sport="soccer", op="update") == 0

    processor.publish_counts()
    processor.publish_counts()  # nothing new: nothing added

    assert sample(metrics, "sportrix_ingester_frames_total", sport="soccer", op="update") == 3
    assert sample(metrics, "sportrix_ingester_frames_total", sport="other", op="update") == 1
    assert sample(metrics, "sportrix_ingester_frames_total", sport="cricket", op="snapshot") == 1


def test_cricket_frames_use_the_cricket_schema(processor: FrameProcessor) -> None:
    record, _ = processor.process(frame("update", "cricket"), NOW, 1.0, 0)
    assert record is not None
    decoded = Decoder().decode(record.value).record
    assert decoded["sport"] == "cricket"
    assert decoded["score"]["runs"] == 154


def test_seq_gap_asks_for_a_snapshot_and_is_counted(
    processor: FrameProcessor, metrics: Metrics
) -> None:
    processor.process(frame("snapshot", seq=10), NOW, 1.0, 0)
    record, actions = processor.process(frame("update", seq=13), NOW, 1.0, 0)
    assert record is not None  # the frame itself is still produced
    assert actions == [Subscribe(0, SOCCER_ID)]
    assert sample(metrics, "sportrix_ingester_seq_gaps_total", sport="soccer") == 1


def test_duplicate_is_produced_and_counted(processor: FrameProcessor, metrics: Metrics) -> None:
    processor.process(frame("snapshot", seq=10), NOW, 1.0, 0)
    record, _ = processor.process(frame("update", seq=10), NOW, 1.0, 0)
    assert record is not None
    assert sample(metrics, "sportrix_ingester_out_of_order_frames_total", sport="soccer") == 1


@pytest.mark.parametrize(
    ("raw", "stage", "key"),
    [
        (b"not json", "decode", None),
        (b"[1]", "decode", None),
        (b'{"match_id": 1}', "decode", None),
        (frame("update", score={"home": "one", "away": 0}), "validate", SOCCER_ID),
        (frame("update", home=None), "validate", SOCCER_ID),
        (frame("update", sport="curling"), "convert", SOCCER_ID),
        (frame("update", seq=2**63), "encode", SOCCER_ID),
    ],
)
def test_bad_frames_are_dead_lettered_with_raw_bytes(
    processor: FrameProcessor, metrics: Metrics, raw: bytes, stage: str, key: int | None
) -> None:
    record, _ = processor.process(raw, NOW, 1.0, 0)
    assert record is not None
    assert record.topic == "dlq"
    assert record.value == raw
    assert record.key == (str(key).encode() if key else None)
    headers = dict(record.headers)
    assert headers["stage"] == stage.encode()
    assert headers["error"]
    assert b"\n" not in headers["error"]
    assert headers["received_at"].endswith(b"Z")
    assert sample(metrics, "sportrix_ingester_dlq_records_total", stage=stage) == 1


def test_unknown_op_is_skipped_and_counted(processor: FrameProcessor, metrics: Metrics) -> None:
    assert processor.process(b'{"op":"stats","match_id":1}', NOW, 1.0, 0) == (None, [])
    assert sample(metrics, "sportrix_ingester_skipped_frames_total", reason="unknown_op") == 1


def test_frames_of_matches_not_followed_are_skipped_and_counted(
    processor: FrameProcessor, metrics: Metrics
) -> None:
    raw = frame("update", match_id=5)
    raw = raw.replace(f'"match_id":{SOCCER_ID}'.encode(), b'"match_id":5', 1)
    assert processor.process(raw, NOW, 1.0, 0) == (None, [])
    assert sample(metrics, "sportrix_ingester_skipped_frames_total", reason="not_followed") == 1


def test_error_frame_refuses_the_match_with_its_reason(
    processor: FrameProcessor, book: SubscriptionBook, metrics: Metrics
) -> None:
    raw = orjson.dumps(
        {"op": "error", "match_id": CRICKET_ID, "code": "sport_not_enabled", "error": "no cricket"}
    )
    assert processor.process(raw, NOW, 1.0, 0) == (None, [])
    match = book.get(CRICKET_ID)
    assert match is not None
    assert match.state is MatchState.REFUSED
    assert (match.refused_code, match.refused_reason) == ("sport_not_enabled", "no cricket")
    assert sample(metrics, "sportrix_ingester_error_frames_total", code="sport_not_enabled") == 1


def test_an_error_frame_without_match_id_leaves_the_subscribe_to_its_deadline(
    processor: FrameProcessor, book: SubscriptionBook
) -> None:
    """The contract lets an error frame omit ``match_id``: it refuses nothing, and the
    subscribe it may have answered is sent again once its deadline passes."""
    book.subscribe_sent(0, SOCCER_ID, 0.0)
    book.subscribe_sent(0, CRICKET_ID, 0.0)
    raw = orjson.dumps({"op": "error", "code": "rate_limited", "error": "slow down"})
    assert processor.process(raw, NOW, 1.0, 0) == (None, [])
    assert book.get(CRICKET_ID).state is MatchState.PENDING  # type: ignore[union-attr]
    resent = [Subscribe(0, SOCCER_ID, resend=True), Subscribe(0, CRICKET_ID, resend=True)]
    assert book.tick(book.subscribe_timeout) == resent


def test_error_codes_outside_the_protocol_count_as_other(
    processor: FrameProcessor, metrics: Metrics
) -> None:
    """The ``code`` label takes the protocol's codes only: anything else the upstream sends
    (a new code, a long or hostile string, none at all) is ``other``."""
    for code in ("sport_not_enabled", "brand_new_code", "x" * 5000, None, 7):
        processor.process(orjson.dumps({"op": "error", "code": code, "error": "e"}), NOW, 1.0, 0)
    codes = {
        s.labels["code"]: s.value
        for family in metrics.registry.collect()
        if family.name == "sportrix_ingester_error_frames"
        for s in family.samples
        if s.name.endswith("_total")
    }
    assert codes == {code: 0.0 for code in ERROR_CODES} | {"sport_not_enabled": 1.0, "other": 4.0}


def test_a_stray_frame_is_counted_and_leaves_the_book_alone(
    processor: FrameProcessor, book: SubscriptionBook, metrics: Metrics
) -> None:
    """Frames read from a connection being closed: counted, never produced, even for a
    match followed (again) by now, and an error frame among them refuses nothing."""
    processor.process(frame("snapshot", seq=10), NOW, 1.0, 0)
    refusal = {"op": "error", "match_id": SOCCER_ID, "code": "match_not_found", "error": "x"}
    stray = [frame("update", seq=11), frame("snapshot", "cricket"), orjson.dumps(refusal)]
    for raw in stray:
        assert processor.process(raw, NOW, 2.0, None) == (None, [])
    processor.publish_counts()

    match = book.get(SOCCER_ID)
    assert match is not None
    assert (match.state, match.last_seq, match.last_frame_at) == (MatchState.ACTIVE, 10, 1.0)
    cricket = book.get(CRICKET_ID)
    assert cricket is not None
    assert cricket.state is MatchState.PENDING
    assert sample(metrics, "sportrix_ingester_frames_total", sport="soccer", op="update") == 1
    assert sample(metrics, "sportrix_ingester_frames_total", sport="cricket", op="snapshot") == 1
    assert sample(metrics, "sportrix_ingester_skipped_frames_total", reason="not_followed") == 2
    assert sample(metrics, "sportrix_ingester_error_frames_total", code="match_not_found") == 1


@pytest.mark.parametrize("lazy_decode", [True, False])
def test_frames_from_a_connection_that_does_not_hold_the_match_are_skipped(
    book: SubscriptionBook, metrics: Metrics, lazy_decode: bool
) -> None:
    """Match SOCCER_ID moved from connection 0 (still open) to connection 1: connection 0's
    late frames of it are skipped, both ways, and its late refusal refuses nothing."""
    codecs, _ = build_codecs(load_settings())
    codecs = codecs if lazy_decode else codecs.checked_only()
    processor = FrameProcessor(book, codecs, classify_error, metrics, "scores", "dlq", "pod-1")
    book.per_connection = 2
    processor.process(frame("snapshot", seq=10), NOW, 1.0, 0)
    book.unfollow(SOCCER_ID)
    book.follow(3)  # fills connection 0
    book.follow(SOCCER_ID)  # now on connection 1
    book.connected(1)
    refusal = {"op": "error", "match_id": SOCCER_ID, "code": "rate_limited", "error": "x"}
    late = [frame("update", seq=11), frame("snapshot", seq=11), orjson.dumps(refusal)]
    for raw in late:
        assert processor.process(raw, NOW, 2.0, 0) == (None, [])
    record, _ = processor.process(frame("snapshot", seq=14), NOW, 3.0, 1)
    assert record is not None
    assert processor.process(frame("update", seq=12), NOW, 3.0, 0) == (None, [])
    record, _ = processor.process(frame("update", seq=15), NOW, 3.0, 1)
    assert record is not None
    match = book.get(SOCCER_ID)
    assert match is not None
    assert (match.state, match.last_seq, match.connection) == (MatchState.ACTIVE, 15, 1)
    assert sample(metrics, "sportrix_ingester_skipped_frames_total", reason="not_followed") == 3
    assert sample(metrics, "sportrix_ingester_out_of_order_frames_total", sport="soccer") == 0


def test_a_message_over_the_size_limit_is_dead_lettered_from_its_first_bytes(
    processor: FrameProcessor, book: SubscriptionBook, metrics: Metrics
) -> None:
    head = frame("snapshot")[:500]
    for _ in range(3):
        record, actions = processor.process_oversized(head, "frame with 5000000 bytes", NOW, 0)
        assert record is not None
        assert actions == []
        assert (record.topic, record.key, record.value) == ("dlq", str(SOCCER_ID).encode(), head)
        headers = dict(record.headers)
        assert headers["stage"] == b"decode"
        assert headers["error"] == (
            b"message over the size limit (frame with 5000000 bytes); its first 500 bytes kept"
        )
    match = book.get(SOCCER_ID)
    assert match is not None
    assert (match.state, match.refused_code) == (MatchState.REFUSED, "message_too_big")
    record, _ = processor.process_oversized(b"\x00garbage", "too big", NOW, 0)
    assert record is not None
    assert record.key is None
    assert sample(metrics, "sportrix_ingester_dlq_records_total", stage="decode") == 4


def test_a_malformed_stray_message_is_dead_lettered(
    processor: FrameProcessor, metrics: Metrics
) -> None:
    record, actions = processor.process(b"{not json", NOW, 1.0, None)
    assert record is not None
    assert actions == []
    assert (record.topic, record.value) == ("dlq", b"{not json")
    assert sample(metrics, "sportrix_ingester_dlq_records_total", stage="decode") == 1


def test_a_stray_unknown_op_is_skipped_and_counted(
    processor: FrameProcessor, metrics: Metrics
) -> None:
    assert processor.process(b'{"op":"stats","match_id":1}', NOW, 1.0, None) == (None, [])
    assert sample(metrics, "sportrix_ingester_skipped_frames_total", reason="unknown_op") == 1


def test_a_valid_data_frame_takes_the_lazy_way_alone(
    processor: FrameProcessor, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full_decode(raw: bytes) -> None:
        raise AssertionError("decoded in full")

    monkeypatch.setattr(pipeline, "decode_frame", full_decode)
    for raw in (frame("update"), frame("snapshot", "cricket")):
        record, _ = processor.process(raw, NOW, 1.0, 0)
        assert record is not None
        assert record.topic == "scores"


def test_a_lazy_way_that_fails_leaves_the_frame_to_the_full_way(
    processor: FrameProcessor, metrics: Metrics, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("encoder not prepared")

    monkeypatch.setattr(SportCodecImpl, "unchecked_record", broken)
    record, _ = processor.process(frame("update"), NOW, 1.0, 0)  # does not raise
    assert record is not None
    assert record.topic == "dlq"
    assert dict(record.headers)["stage"] == b"convert"
    assert sample(metrics, "sportrix_ingester_dlq_records_total", stage="convert") == 1
    processor.publish_counts()
    assert sample(metrics, "sportrix_ingester_frames_total", sport="soccer", op="update") == 1
