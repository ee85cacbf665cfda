"""Malformed frames on purpose: one builder per kind in :data:`MALFORMED_KINDS`.

Each builder takes the real ``update`` frame just sent for a match (its id and its ``data``
as JSON bytes) and returns a frame that breaks the protocol in exactly one way.
"""

from __future__ import annotations

from collections.abc import Callable

import orjson

from sportrix_devkit.simulator.config import MALFORMED_KINDS

__all__ = ["MALFORMED_KINDS", "malformed_frame"]


def _bad_json(match_id: int, data: bytes) -> bytes:
    return b'{"op":"update","match_id":%d,"data":' % match_id + data[: len(data) // 2]


def _not_object(match_id: int, data: bytes) -> bytes:
    return b'["update",%d]' % match_id


def _no_op(match_id: int, data: bytes) -> bytes:
    return b'{"match_id":%d,"data":%s}' % (match_id, data)


def _missing_field(match_id: int, data: bytes) -> bytes:
    fields = orjson.loads(data)
    del fields["status"]
    return _update(match_id, fields)


def _wrong_type(match_id: int, data: bytes) -> bytes:
    fields = orjson.loads(data)
    fields["seq"] = str(fields["seq"])
    return _update(match_id, fields)


def _unknown_sport(match_id: int, data: bytes) -> bytes:
    fields = orjson.loads(data)
    fields["sport"] = "curling"
    return _update(match_id, fields)


def _unknown_op(match_id: int, data: bytes) -> bytes:
    return b'{"op":"score_push","match_id":%d,"data":%s}' % (match_id, data)


def _update(match_id: int, fields: object) -> bytes:
    return orjson.dumps({"op": "update", "match_id": match_id, "data": fields})


_BUILDERS: dict[str, Callable[[int, bytes], bytes]] = {
    "bad_json": _bad_json,
    "not_object": _not_object,
    "no_op": _no_op,
    "missing_field": _missing_field,
    "wrong_type": _wrong_type,
    "unknown_sport": _unknown_sport,
    "unknown_op": _unknown_op,
}
assert tuple(_BUILDERS) == MALFORMED_KINDS


def malformed_frame(kind: str, match_id: int, data: bytes) -> bytes:
    """A frame of ``kind`` derived from match ``match_id``'s current ``data`` (JSON bytes)."""
    return _BUILDERS[kind](match_id, data)
