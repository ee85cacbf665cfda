"""Parse one config-topic record into a command (pure, no I/O).

The contract: key = the match id as a UTF-8 decimal string; value = UTF-8 JSON
``{"action": "add"|"remove", "match_id": N}`` (unknown extra fields ignored), or null
(a tombstone), which removes. Anything else raises :class:`CommandRejected` with a
``reason`` from :data:`REJECT_REASONS`, used as a metric label.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import orjson

from ingester.upstream.frames import positive_int

__all__ = [
    "MAX_COMMAND_BYTES",
    "REJECT_REASONS",
    "Command",
    "CommandRejected",
    "encode_command",
    "parse_command",
]

#: A command is a few dozen bytes; anything this large is refused unread.
MAX_COMMAND_BYTES = 4096

REJECT_REASONS = (
    "bad_key",
    "oversize",
    "not_json",
    "not_object",
    "unknown_action",
    "bad_match_id",
    "key_mismatch",
)


class CommandRejected(Exception):
    """A config record that is not a valid command; ``reason`` is a metric label."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Command:
    """A valid command: follow (``add``) or stop following (``remove``) ``match_id``."""

    action: Literal["add", "remove"]
    match_id: int
    tombstone: bool = False


def parse_command(key: bytes | None, value: bytes | None) -> Command:
    """Parse a config-topic record or raise :class:`CommandRejected`."""
    key_id = _key_id(key)
    if value is None:
        return Command("remove", key_id, tombstone=True)
    if len(value) > MAX_COMMAND_BYTES:
        raise CommandRejected("oversize", f"{len(value)} bytes, at most {MAX_COMMAND_BYTES}")
    try:
        body = orjson.loads(value)
    except orjson.JSONDecodeError:
        raise CommandRejected("not_json", "value is not UTF-8 JSON") from None
    if not isinstance(body, dict):
        raise CommandRejected("not_object", f"value is a JSON {type(body).__name__}")
    action = body.get("action")
    if action != "add" and action != "remove":
        raise CommandRejected("unknown_action", f"action {str(action)[:40]!r}")
    match_id = positive_int(body.get("match_id"))
    if match_id is None:
        raise CommandRejected("bad_match_id", "match_id is not a positive integer")
    if match_id != key_id:
        raise CommandRejected("key_mismatch", f"match_id {match_id} under key {key_id}")
    return Command(action, match_id)


def _key_id(key: bytes | None) -> int:
    if key is None:
        raise CommandRejected("bad_key", "record has no key")
    text = key[:32].decode("utf-8", "replace")
    if len(key) > 20 or not key.isdigit() or key.startswith(b"0"):
        raise CommandRejected("bad_key", f"key {text!r} is not a positive decimal match id")
    return int(key)


def encode_command(action: Literal["add", "remove"], match_id: int) -> tuple[bytes, bytes]:
    """The (key, value) of a command, exactly as the contract writes it."""
    return str(match_id).encode(), orjson.dumps({"action": action, "match_id": match_id})
