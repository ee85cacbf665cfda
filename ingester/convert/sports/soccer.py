"""Soccer (``sport: "soccer"``): the ``data`` shape behind ``schemas/soccer.avsc``."""

from __future__ import annotations

from typing import NotRequired

from typing_extensions import TypedDict

from ingester.convert.common import CommonData

__all__ = ["Clock", "Data", "Event", "Phase", "Stats", "TeamCounts"]


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
