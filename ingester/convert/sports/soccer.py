"""Soccer (``sport: "soccer"``): the ``data`` shape behind ``schemas/soccer.avsc``."""

from __future__ import annotations

from typing import Any, NotRequired

from typing_extensions import TypedDict

from ingester.convert.common import CommonData

__all__ = [
    "HISTORY",
    "SAMPLE",
    "Clock",
    "Data",
    "Event",
    "Phase",
    "Stats",
    "TeamCounts",
    "headline",
]


class TeamCounts(TypedDict):
    """One count per team (the score, each statistic)."""

    home: int
    away: int


class Clock(TypedDict):
    """The match clock; ``period`` is an open vocabulary (``1H``, ``HT``, ``2H``...)."""

    minute: int
    second: int
    period: str
    running: bool
    added_time: int


class Phase(TypedDict):
    """The current phase of play; ``code`` is an open vocabulary, ``team`` may be null."""

    code: str
    label: str
    team: NotRequired[str | None]


class Stats(TypedDict):
    """Match statistics per team."""

    possession: TeamCounts
    shots: TeamCounts
    shots_on_target: TeamCounts
    corners: TeamCounts
    fouls: TeamCounts
    offsides: TeamCounts
    yellow_cards: TeamCounts
    red_cards: TeamCounts


class Event(TypedDict):
    """One match event; ``type`` is an open vocabulary, ``team`` and ``player`` may be null."""

    id: int
    minute: int
    second: int
    type: str
    team: NotRequired[str | None]
    player: NotRequired[str | None]
    label: str


class Data(CommonData):
    """A soccer match's full state."""

    score: TeamCounts
    clock: Clock
    phase: Phase
    stats: Stats
    events: list[Event]


#: The protocol's example ``data`` (``sportrix-protocol.md``), verbatim.
SAMPLE: dict[str, Any] = {
    "match_id": 41282, "sport": "soccer", "competition": "Premier League",
    "home": "Arsenal", "away": "Chelsea", "status": "live",
    "start_time": "2026-11-28T15:00:00Z", "seq": 1234,
    "updated_at": "2026-11-28T16:03:12.120Z",
    "score": {"home": 1, "away": 0},
    "clock": {"minute": 63, "second": 12, "period": "2H", "running": True, "added_time": 0},
    "phase": {"code": "attack", "label": "Arsenal attack", "team": "home"},
    "stats": {
        "possession": {"home": 55, "away": 45}, "shots": {"home": 9, "away": 4},
        "shots_on_target": {"home": 4, "away": 1}, "corners": {"home": 5, "away": 2},
        "fouls": {"home": 7, "away": 10}, "offsides": {"home": 1, "away": 3},
        "yellow_cards": {"home": 1, "away": 2}, "red_cards": {"home": 0, "away": 0},
    },
    "events": [
        {"id": 1, "minute": 23, "second": 4, "type": "goal", "team": "home",
         "player": "B. Saka", "label": "Goal! B. Saka (Arsenal)"},
    ],
}  # fmt: skip
#: The list of ``data`` that grows over a match (one entry per event).
HISTORY = "events"


def headline(r: dict[str, Any]) -> str:
    """``Arsenal 1-0 Chelsea [63:12 2H] Arsenal attack`` for a decoded record."""
    clock = r.get("clock") or {}
    score = r.get("score") or {}
    phase = (r.get("phase") or {}).get("label") or r.get("status", "")
    return (
        f"{r['home']} {score.get('home', '?')}-{score.get('away', '?')} {r['away']} "
        f"[{clock.get('minute', 0)}:{clock.get('second', 0):02d} {clock.get('period', '')}] "
        f"{phase}"
    )
