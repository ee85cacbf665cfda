"""Config commands: the contract's format, and every way to get it wrong."""

import pytest

from ingester.control.commands import (
    MAX_COMMAND_BYTES,
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
