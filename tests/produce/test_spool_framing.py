"""The spool's framing, without files: round trip, and how damage is classified."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingester.produce.spool import framing
from ingester.produce.spool.framing import HEADER_SIZE, FrameScanner, Outcome, encode_frames

T = 1_800_000_000.25
payload_lists = st.lists(st.binary(max_size=300), max_size=20)


def scan(data: bytes) -> tuple[list[tuple[bytes, float]], FrameScanner]:
    scanner = FrameScanner(data)
    frames = [(bytes(payload), at) for payload, at in scanner]
    return frames, scanner


def test_round_trip_keeps_payloads_order_and_time() -> None:
    payloads = [b"one", b"", b"three" * 100]
    data = encode_frames(payloads, T)
    assert len(data) == 3 * HEADER_SIZE + sum(map(len, payloads))
    frames, scanner = scan(data)
    assert frames == [(p, T) for p in payloads]
    assert scanner.outcome is Outcome.CLEAN
    assert scanner.offset == len(data)
    assert framing.frame_header(data) == (HEADER_SIZE + 3, T)
    assert framing.frame_header(data[: HEADER_SIZE - 1]) is None


def test_an_incomplete_last_frame_is_torn() -> None:
    data = encode_frames([b"a" * 10, b"b" * 10], T)
    for cut in (len(data) - 1, len(data) - 10, HEADER_SIZE + 10 + 3):
        frames, scanner = scan(data[:cut])
        assert frames == [(b"a" * 10, T)]
        assert scanner.outcome is Outcome.TORN
        assert scanner.offset == HEADER_SIZE + 10


def test_a_bad_checksum_on_the_last_frame_is_torn_and_before_it_corrupt() -> None:
    data = bytearray(encode_frames([b"a" * 10, b"b" * 10, b"c" * 10], T))
    last = bytearray(data)
    last[-1] ^= 0x01
    frames, scanner = scan(bytes(last))
    assert [p for p, _ in frames] == [b"a" * 10, b"b" * 10]
    assert scanner.outcome is Outcome.TORN
    middle = bytearray(data)
    middle[HEADER_SIZE + 10 + HEADER_SIZE + 2] ^= 0x80  # in the second payload
    frames, scanner = scan(bytes(middle))
    assert [p for p, _ in frames] == [b"a" * 10]
    assert scanner.outcome is Outcome.CORRUPT
    assert scanner.offset == HEADER_SIZE + 10
    assert "checksum" in scanner.detail


def test_a_zero_filled_tail_is_torn() -> None:
    data = encode_frames([b"a" * 10], T) + bytes(4096)
    frames, scanner = scan(data)
    assert frames == [(b"a" * 10, T)]
    assert scanner.outcome is Outcome.TORN


def test_an_absurd_length_with_data_after_it_is_corrupt() -> None:
    good = encode_frames([b"a" * 10], T)
    bad = struct.pack("<IId", 0, framing.MAX_PAYLOAD + 1, T) + b"x" * 100
    frames, scanner = scan(good + bad)
    assert frames == [(b"a" * 10, T)]
    assert scanner.outcome is Outcome.CORRUPT
    assert "length" in scanner.detail


def test_a_payload_over_the_maximum_is_refused() -> None:
    with pytest.raises(ValueError, match="over"):
        encode_frames([bytes(framing.MAX_PAYLOAD + 1)], T)


@given(payload_lists, st.data())
def test_a_cut_anywhere_keeps_every_whole_frame_before_it(
    payloads: list[bytes], data: st.DataObject
) -> None:
    encoded = encode_frames(payloads, T)
    cut = data.draw(st.integers(0, len(encoded)))
    frames, scanner = scan(encoded[:cut])
    whole = 0
    ends = []
    for payload in payloads:
        whole += HEADER_SIZE + len(payload)
        ends.append(whole)
    kept = sum(1 for end in ends if end <= cut)
    assert frames == [(p, T) for p in payloads[:kept]]
    assert scanner.offset == (ends[kept - 1] if kept else 0)
    assert scanner.outcome is (Outcome.CLEAN if scanner.offset == cut else Outcome.TORN)


@given(payload_lists.filter(lambda p: len(p) > 0), st.data())
def test_a_flipped_bit_never_yields_a_wrong_payload(
    payloads: list[bytes], data: st.DataObject
) -> None:
    encoded = bytearray(encode_frames(payloads, T))
    at = data.draw(st.integers(0, len(encoded) - 1))
    encoded[at] ^= 1 << data.draw(st.integers(0, 7))
    frames, scanner = scan(bytes(encoded))
    # Every frame yielded is one appended, in order, and the damage stops the scan.
    assert frames == [(p, T) for p in payloads[: len(frames)]]
    assert scanner.offset <= at
    if _in_length_field(payloads, at):  # a longer frame may look incomplete: either
        assert scanner.outcome in (Outcome.TORN, Outcome.CORRUPT)
    elif at >= len(encoded) - HEADER_SIZE - len(payloads[-1]):
        assert scanner.outcome is Outcome.TORN
    else:
        assert scanner.outcome is Outcome.CORRUPT


def _in_length_field(payloads: list[bytes], at: int) -> bool:
    start = 0
    for payload in payloads:
        if start + 4 <= at < start + 8:
            return True
        start += HEADER_SIZE + len(payload)
    return False


@settings(max_examples=300)
@given(st.binary(max_size=2000))
def test_any_bytes_end_in_a_classification(data: bytes) -> None:
    frames, scanner = scan(data)
    assert scanner.outcome in (Outcome.CLEAN, Outcome.TORN, Outcome.CORRUPT)
    assert 0 <= scanner.offset <= len(data)
    assert sum(HEADER_SIZE + len(p) for p, _ in frames) == scanner.offset
