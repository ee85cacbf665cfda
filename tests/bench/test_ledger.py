"""The per-match ledger shared by the fault tests and ``bench outage`` (pure, no broker)."""

from __future__ import annotations

import orjson

from ingester.convert.samples import sample_frames
from ingester.encode import Decoder
from sportrix_devkit.bench.ceilings import encode_frames
from sportrix_devkit.bench.ledger import MatchLedger, frame_of, group


def test_frame_of_reads_op_seq_and_received_at_from_the_prefix_as_a_full_decode_does() -> None:
    frames = sample_frames(6)
    snapshot = orjson.loads(frames[0])
    snapshot["op"] = "snapshot"
    frames.append(orjson.dumps(snapshot))
    decoder = Decoder()
    for record in encode_frames(frames, "ledger-test"):
        decoded = decoder.decode(record.value).record
        (op, seq), received_at = frame_of(record.value)
        assert (op, seq) == (decoded["op"], decoded["seq"])
        assert received_at == decoded["received_at"]


def test_a_match_with_a_hole_a_repeat_and_two_snapshots_at_one_seq() -> None:
    rows = [
        (7, ("snapshot", 10), b"a", False, 1000),
        (7, ("update", 11), b"a", False, 1001),
        (7, ("update", 11), b"a", True, 1001),  # an exact re-send
        (7, ("update", 14), b"a", True, 1004),  # 12 and 13 missing
        (7, ("snapshot", 14), b"b", False, 2000),  # after a reconnect, same seq
        (8, ("snapshot", 3), b"b", False, 2001),
    ]
    books = group(rows)
    assert set(books) == {7, 8}
    book = books[7]
    assert book.replayed == [False, False, True, True, False]
    assert book.duplicates == 1
    assert book.distinct() == 4
    assert book.gaps() == [(("update", 11), ("update", 14))]
    assert book.missing() == 2
    assert not book.out_of_order()
    assert book.last_seq == 14
    assert book.snapshots() == 2


def test_out_of_order_is_a_seq_going_down_outside_a_snapshot() -> None:
    book = MatchLedger(1)
    for frame in [("snapshot", 5), ("update", 6), ("update", 5), ("snapshot", 4), ("update", 5)]:
        book.add(frame)
    assert book.out_of_order() == [(("update", 6), ("update", 5))]
