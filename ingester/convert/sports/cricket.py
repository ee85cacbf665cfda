"""Cricket (``sport: "cricket"``): the ``data`` shape behind ``schemas/cricket.avsc``."""

from __future__ import annotations

from typing import Any, NotRequired

from typing_extensions import TypedDict

from ingester.convert.common import CommonData

__all__ = [
    "SAMPLE",
    "Batsman",
    "Bowler",
    "Data",
    "Event",
    "Innings",
    "Over",
    "Score",
    "headline",
]


class Score(TypedDict):
    """The batting team's score; ``overs`` is the provider's ``"completed.balls"`` string."""

    runs: int
    wickets: int
    overs: str


class Over(TypedDict):
    """The over in progress; ``balls`` entries are an open vocabulary (``"4"``, ``"W"``...)."""

    number: int
    balls: list[str]


class Batsman(TypedDict):
    """A batsman at the crease."""

    name: str
    runs: int
    balls: int
    fours: int
    sixes: int
    on_strike: bool


class Bowler(TypedDict):
    """The bowler of the current over."""

    name: str
    overs: str
    maidens: int
    runs: int
    wickets: int


class Innings(TypedDict):
    """One innings' total on the scorecard."""

    innings: int
    team: str
    runs: int
    wickets: int
    overs: str
    declared: bool


class Event(TypedDict):
    """The latest event; ``type`` is an open vocabulary (``four``, ``wicket``...)."""

    type: str
    label: str


class Data(CommonData):
    """A cricket match's full state; ``target``, ``bowler``, ``last_event`` may be null."""

    format: str
    batting: str
    bowling: str
    innings: int
    score: Score
    target: NotRequired[int | None]
    over: Over
    batsmen: list[Batsman]
    bowler: NotRequired[Bowler | None]
    scorecard: list[Innings]
    last_event: NotRequired[Event | None]


#: The protocol's example ``data`` (``sportrix-protocol.md``), verbatim.
SAMPLE: dict[str, Any] = {
    "match_id": 90211, "sport": "cricket", "competition": "ODI Series", "format": "ODI",
    "home": "India", "away": "Australia", "status": "live",
    "start_time": "2026-11-28T08:30:00Z", "seq": 77,
    "updated_at": "2026-11-28T14:00:00.120Z",
    "batting": "India", "bowling": "Australia", "innings": 1,
    "score": {"runs": 154, "wickets": 3, "overs": "27.4"}, "target": None,
    "over": {"number": 28, "balls": ["1", "4", "W", "0"]},
    "batsmen": [
        {"name": "V. Kohli", "runs": 61, "balls": 58, "fours": 6, "sixes": 1,
         "on_strike": True},
        {"name": "S. Iyer", "runs": 12, "balls": 20, "fours": 1, "sixes": 0,
         "on_strike": False},
    ],
    "bowler": {"name": "P. Cummins", "overs": "5.4", "maidens": 0, "runs": 31, "wickets": 1},
    "scorecard": [
        {"innings": 1, "team": "India", "runs": 154, "wickets": 3, "overs": "27.4",
         "declared": False},
    ],
    "last_event": {"type": "four", "label": "FOUR! Kohli drives through cover"},
}  # fmt: skip


def headline(r: dict[str, Any]) -> str:
    """``India 154/3 (27.4) - FOUR! Kohli drives through cover`` for a decoded record."""
    score = r.get("score") or {}
    event = (r.get("last_event") or {}).get("label") or r.get("status", "")
    batting = r.get("batting") or r["home"]
    return (
        f"{batting} {score.get('runs', 0)}/{score.get('wickets', 0)} "
        f"({score.get('overs', '0.0')}) - {event}"
    )
