"""Parse one config-topic record into a command (pure, no I/O).

The contract: key = the match id as a UTF-8 decimal string; value = UTF-8 JSON
``{"action": "add"|"remove", "match_id": N}`` (unknown extra fields ignored), or null
(a tombstone), which removes. Anything else raises :class:`CommandRejected` with a
``reason`` from :data:`REJECT_REASONS`, used as a metric label. A match id is at most
:data:`MAX_MATCH_ID`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "MAX_COMMAND_BYTES",
    "MAX_MATCH_ID",
    "REJECT_REASONS",
    "Command",
    "CommandRejected",
    "encode_command",
    "parse_command",
]

#: A command is a few dozen bytes; anything this large is refused unread.
MAX_COMMAND_BYTES = 4096

#: Match ids are Avro ``long`` values in the records: 2^63 - 1 is the largest.
MAX_MATCH_ID = 2**63 - 1

REJECT_REASONS = (
    "bad_key",
    "oversize",
    "not_json",
    "not_object",
    "unknown_action",
    "bad_match_id",
    "match_id_too_large",
    "key_mismatch",
)


class CommandRejected(Exception):
    """A config record that is not a valid command; ``reason`` is a metric label.

    ``key_id`` is the match id its key names when the key itself is valid (the record
    then replaces that match's command once the topic is compacted), else ``None``.
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.key_id: int | None = None


@dataclass(frozen=True, slots=True)
class Command:
    """A valid command: follow (``add``) or stop following (``remove``) ``match_id``.

    ``reasserts`` is set on a command the daemon wrote again so that compaction keeps it
    (its ``"reasserts"`` field): the offset of the command whose intent it repeats.
    """

    action: Literal["add", "remove"]
    match_id: int
    tombstone: bool = False
    reasserts: int | None = None


def parse_command(key: bytes | None, value: bytes | None) -> Command:
    """Parse a config-topic record or raise :class:`CommandRejected`."""
    key_id = _key_id(key)
    try:
        return _parse_value(key_id, value)
    except CommandRejected as exc:
        exc.key_id = key_id
        raise


def _parse_value(key_id: int, value: bytes | None) -> Command:
    if value is None:
        return Command("remove", key_id, tombstone=True)
    if len(value) > MAX_COMMAND_BYTES:
        raise CommandRejected("oversize", f"{len(value)} bytes, at most {MAX_COMMAND_BYTES}")
    try:
        # the standard library keeps integers of any size exact (orjson turns those beyond
        # 2^64 into floats), so a match id too large is named as such
        body = json.loads(value.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError):
        raise CommandRejected("not_json", "value is not UTF-8 JSON") from None
    if not isinstance(body, dict):
        raise CommandRejected("not_object", f"value is a JSON {type(body).__name__}")
    action = body.get("action")
    if action != "add" and action != "remove":
        raise CommandRejected("unknown_action", f"action {str(action)[:40]!r}")
    match_id = body.get("match_id")
    if type(match_id) is not int or match_id <= 0:
        raise CommandRejected("bad_match_id", "match_id is not a positive integer")
    if match_id > MAX_MATCH_ID:
        raise _too_large(str(match_id))
    if match_id != key_id:
        raise CommandRejected("key_mismatch", f"match_id {match_id} under key {key_id}")
    reasserts = body.get("reasserts")
    if type(reasserts) is not int or reasserts < 0:
        reasserts = None  # absent, or not the daemon's: an ordinary command
    return Command(action, match_id, reasserts=reasserts)


def _key_id(key: bytes | None) -> int:
    if key is None:
        raise CommandRejected("bad_key", "record has no key")
    text = key[:32].decode("utf-8", "replace")
    if not key.isdigit() or key.startswith(b"0"):
        raise CommandRejected("bad_key", f"key {text!r} is not a positive decimal match id")
    if len(key) > len(str(MAX_MATCH_ID)) or int(key) > MAX_MATCH_ID:
        raise _too_large(f"key {text}" + ("…" if len(key) > 32 else ""))
    return int(key)


def _too_large(what: str) -> CommandRejected:
    shown = what if len(what) <= 40 else what[:40] + "…"
    return CommandRejected(
        "match_id_too_large", f"{shown} is above {MAX_MATCH_ID}, the largest Avro long"
    )


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def encode_command(
    action: Literal["add", "remove"], match_id: int, reasserts: int | None = None
) -> tuple[bytes, bytes]:
    """The (key, value) of a command, exactly as the contract writes it.

    ``reasserts`` marks a command the daemon writes again (see :class:`Command`).
    """
    body: dict[str, object] = {"action": action, "match_id": match_id}
    if reasserts is not None:
        body["reasserts"] = reasserts
    return str(match_id).encode(), json.dumps(body, separators=(",", ":")).encode()
