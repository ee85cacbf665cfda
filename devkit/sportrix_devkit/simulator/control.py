"""The simulator's HTTP GET endpoints: ``/v1/matches`` and the ``/_sim/`` controls.

:func:`route` maps a path and its query to ``(status, JSON text)``; the server wraps it in
an HTTP response. Every endpoint answers JSON; a bad parameter is a 400 with ``error``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import orjson

from sportrix_devkit.simulator.config import ApiKey
from sportrix_devkit.simulator.core import Hub

__all__ = ["Controls", "route"]

Query = dict[str, list[str]]
_N = TypeVar("_N", int, float)
_MATCH = re.compile(r"/_sim/matches/(\d+)")
_STATE = re.compile(r"/_sim/matches/(\d+)/states/(\d+)")


class Controls(Protocol):
    """What the endpoints act on: the running simulator (:class:`.server.Simulator`)."""

    @property
    def hub(self) -> Hub:
        """The matches, sessions and counters."""

    def stats(self) -> dict[str, Any]:
        """The counters served at ``/_sim/stats``."""

    def drop(self, mode: str = "close", code: int | None = None) -> int:
        """Drop every connection; how many there were."""

    def refuse(self, seconds: float, status: int = 503) -> None:
        """Refuse handshakes with ``status`` for ``seconds``."""

    def stall(self, seconds: float) -> None:
        """Send nothing for ``seconds``."""

    def set_malformed(self, fraction: float, kinds: tuple[str, ...] | None = None) -> None:
        """Corrupt ``fraction`` of the frames, of the given kinds."""

    def ignore_subscribes(self, match_id: int, count: int) -> None:
        """Leave the next ``count`` subscribes to ``match_id`` unanswered."""

    def pad_snapshots(self, match_id: int, size: int) -> None:
        """Pad the match's snapshots to ``size`` bytes (0: no padding)."""

    def finish(self, match_id: int) -> bool:
        """End the match now; ``False`` when it is unknown."""

    def add_key(self, spec: str) -> ApiKey:
        """Accept one more API key (``KEY[:SPORT,...]``)."""

    def revoke_key(self, key: str) -> bool:
        """Refuse ``key`` from now on; ``False`` when it was unknown."""


class _BadRequest(ValueError):
    """A missing or invalid query parameter."""


def route(sim: Controls, path: str, query: Query) -> tuple[int, str]:
    """Answer ``GET path?query``: the HTTP status and a JSON body."""
    try:
        if path == "/v1/matches":
            return _json(sim.hub.catalogue())
        if match := _MATCH.fullmatch(path):
            return _match_state(sim, int(match[1]), None)
        if match := _STATE.fullmatch(path):
            return _match_state(sim, int(match[1]), int(match[2]))
        action = _ACTIONS.get(path)
        if action is None:
            return 404, _error(f"no endpoint {path}")
        return _json(action(sim, query))
    except _BadRequest as exc:
        return 400, _error(str(exc))


def _match_state(sim: Controls, match_id: int, seq: int | None) -> tuple[int, str]:
    feed = sim.hub.feeds.get(match_id)
    if feed is None:
        return 404, _error(f"no match {match_id}")
    state = feed.data_json if seq is None else feed.state_at(seq)
    if state is None:
        return 404, _error(f"seq {seq} of match {match_id} is not in the history")
    return 200, state.decode()


def _stats(sim: Controls, query: Query) -> Any:
    return sim.stats()


def _drop(sim: Controls, query: Query) -> Any:
    mode = _text(query, "mode", "close")
    code = _number(query, "code", int, None)
    if mode not in ("close", "abrupt"):
        raise _BadRequest("mode must be close or abrupt")
    return {"dropped": sim.drop(mode, code), "mode": mode}


def _refuse(sim: Controls, query: Query) -> Any:
    seconds = _number(query, "seconds", float, None)
    status = _number(query, "status", int, None) or 503
    if seconds is None or seconds < 0 or not 400 <= status <= 599:
        raise _BadRequest("seconds >= 0 is required; status must be 4xx or 5xx")
    sim.refuse(seconds, status)
    return {"refusing_for": seconds, "status": status}


def _stall(sim: Controls, query: Query) -> Any:
    seconds = _number(query, "seconds", float, None)
    if seconds is None or seconds <= 0:
        raise _BadRequest("seconds > 0 is required")
    sim.stall(seconds)
    return {"stalled_for": seconds}


def _malformed(sim: Controls, query: Query) -> Any:
    fraction = _number(query, "fraction", float, None)
    kinds_text = _text(query, "kinds", "")
    kinds = tuple(k for k in kinds_text.split(",") if k) or None
    if fraction is None:
        raise _BadRequest("fraction is required")
    try:
        sim.set_malformed(fraction, kinds)
    except ValueError as exc:
        raise _BadRequest(str(exc)) from None
    return {"fraction": fraction, "kinds": list(sim.hub.malformed_kinds)}


def _finish(sim: Controls, query: Query) -> Any:
    match_id = _number(query, "match_id", int, None)
    if match_id is None or not sim.finish(match_id):
        raise _BadRequest("match_id must name a match")
    return {"finished": match_id}


def _ignore(sim: Controls, query: Query) -> Any:
    match_id = _number(query, "match_id", int, None)
    count = _number(query, "count", int, 1)
    if match_id is None or count is None or count < 0:
        raise _BadRequest("match_id is required; count must be >= 0")
    sim.ignore_subscribes(match_id, count)
    return {"ignoring": {"match_id": match_id, "subscribes": count}}


def _pad(sim: Controls, query: Query) -> Any:
    match_id = _number(query, "match_id", int, None)
    size = _number(query, "bytes", int, None)
    if match_id is None or size is None or not 0 <= size <= 64 * 1024 * 1024:
        raise _BadRequest("match_id and bytes (0 to 64 MiB) are required")
    sim.pad_snapshots(match_id, size)
    return {"padding": {"match_id": match_id, "bytes": size}}


def _keys(sim: Controls, query: Query) -> Any:
    result: dict[str, Any] = {}
    if "add" in query:
        try:
            api_key = sim.add_key(_text(query, "add", ""))
        except ValueError as exc:
            raise _BadRequest(str(exc)) from None
        sports = sorted(api_key.sports) if api_key.sports is not None else None
        result["added"] = {"key": api_key.key, "sports": sports}
    if "revoke" in query:
        key = _text(query, "revoke", "")
        result["revoked"] = {"key": key, "known": sim.revoke_key(key)}
    if not result:
        raise _BadRequest("add=KEY[:sports] or revoke=KEY is required")
    return result


_ACTIONS: dict[str, Callable[[Controls, Query], Any]] = {
    "/_sim/stats": _stats,
    "/_sim/drop": _drop,
    "/_sim/refuse": _refuse,
    "/_sim/stall": _stall,
    "/_sim/malformed": _malformed,
    "/_sim/finish": _finish,
    "/_sim/ignore": _ignore,
    "/_sim/pad": _pad,
    "/_sim/keys": _keys,
}


def _text(query: Query, name: str, default: str) -> str:
    values = query.get(name)
    return values[0] if values else default


def _number(query: Query, name: str, kind: Callable[[str], _N], default: _N | None) -> _N | None:
    values = query.get(name)
    if not values:
        return default
    try:
        return kind(values[0])
    except ValueError:
        raise _BadRequest(f"{name} must be a number") from None


def _json(value: Any) -> tuple[int, str]:
    return 200, orjson.dumps(value).decode()


def _error(text: str) -> str:
    return orjson.dumps({"error": text}).decode()
