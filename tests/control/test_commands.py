"""Config commands: the contract's format, and every way to get it wrong."""

import pytest

from ingester.cli import build_parser
from ingester.control.commands import (
    MAX_COMMAND_BYTES,
    MAX_MATCH_ID,
    REJECT_REASONS,
    Command,
    CommandRejected,
    encode_command,
    parse_command,
)


def test_add_and_remove() -> None:
    assert parse_command(b"41282", b'{"action":"add","match_id":41282}') == Command("add", 41282)
    assert parse_command(b"5", b'{"action":"remove","match_id":5,"by":"ops"}') == Command(
        "remove", 5
    )


def test_tombstone_removes() -> None:
    assert parse_command(b"5", None) == Command("remove", 5, tombstone=True)


def test_encode_command_round_trips() -> None:
    assert parse_command(*encode_command("add", 77)) == Command("add", 77)


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        (None, b'{"action":"add","match_id":1}', "bad_key"),
        (b"abc", b'{"action":"add","match_id":1}', "bad_key"),
        (b"-1", b'{"action":"add","match_id":1}', "bad_key"),
        (b"007", b'{"action":"add","match_id":7}', "bad_key"),
        (b"0", b'{"action":"add","match_id":0}', "bad_key"),
        (b"1", b"x" * (MAX_COMMAND_BYTES + 1), "oversize"),
        (b"1", b"{not json", "not_json"),
        (b"1", b"\xff", "not_json"),
        (b"1", b"[1]", "not_object"),
        (b"1", b'{"action":"pause","match_id":1}', "unknown_action"),
        (b"1", b'{"match_id":1}', "unknown_action"),
        (b"1", b'{"action":"add","match_id":"1"}', "bad_match_id"),
        (b"1", b'{"action":"add","match_id":1.0}', "bad_match_id"),
        (b"1", b'{"action":"add","match_id":true}', "bad_match_id"),
        (b"1", b'{"action":"add","match_id":-1}', "bad_match_id"),
        (b"1", b'{"action":"add","match_id":2}', "key_mismatch"),
    ],
)
def test_invalid_commands_are_rejected_with_a_reason(
    key: bytes | None, value: bytes, reason: str
) -> None:
    with pytest.raises(CommandRejected) as info:
        parse_command(key, value)
    assert info.value.reason == reason


def test_the_largest_avro_long_is_a_valid_match_id() -> None:
    key, value = encode_command("add", MAX_MATCH_ID)
    assert parse_command(key, value) == Command("add", MAX_MATCH_ID)


@pytest.mark.parametrize(
    "match_id",
    [2**63, 2**64 - 1, 2**64, 10**25, 10**400],
    ids=["2^63", "2^64-1", "2^64", "10^25", "10^400"],
)
def test_a_match_id_beyond_avro_long_is_rejected_as_too_large(match_id: int) -> None:
    value = b'{"action":"add","match_id":%d}' % match_id
    for key in (str(match_id).encode(), b"1"):
        with pytest.raises(CommandRejected) as info:
            parse_command(key, value)
        assert info.value.reason == "match_id_too_large", (key[:30], info.value)
        assert "9223372036854775807" in info.value.detail


@pytest.mark.parametrize(
    "key", [str(2**63).encode(), str(2**64).encode(), b"9" * 200], ids=["2^63", "2^64", "200 nines"]
)
def test_a_key_beyond_avro_long_is_rejected_as_too_large(key: bytes) -> None:
    for value in (None, b'{"action":"remove","match_id":1}'):
        with pytest.raises(CommandRejected) as info:
            parse_command(key, value)
        assert info.value.reason == "match_id_too_large"


def test_every_reason_is_a_known_label() -> None:
    assert "match_id_too_large" in REJECT_REASONS


def test_a_rejected_record_names_the_match_whose_key_it_holds() -> None:
    with pytest.raises(CommandRejected) as info:
        parse_command(b"41000", b'{"action":"explode","match_id":41000}')
    assert info.value.key_id == 41000
    with pytest.raises(CommandRejected) as info:
        parse_command(b"abc", b'{"action":"add","match_id":1}')
    assert info.value.key_id is None


def test_a_reasserted_command_carries_the_offset_it_repeats() -> None:
    assert parse_command(*encode_command("add", 9, reasserts=17)) == Command("add", 9, reasserts=17)
    for junk in (b'"17"', b"-1", b"1.5", b"true"):
        value = b'{"action":"add","match_id":9,"reasserts":' + junk + b"}"
        assert parse_command(b"9", value) == Command("add", 9)


def test_matches_add_refuses_an_id_no_record_could_carry(
    capsys: pytest.CaptureFixture[str],
) -> None:
    parser = build_parser()
    assert parser.parse_args(["matches", "add", str(MAX_MATCH_ID)]).match_ids == [MAX_MATCH_ID]
    with pytest.raises(SystemExit) as info:
        parser.parse_args(["matches", "add", str(MAX_MATCH_ID + 1)])
    assert info.value.code == 2
    assert "the largest match id" in capsys.readouterr().err
