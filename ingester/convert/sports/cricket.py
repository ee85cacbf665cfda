"""Cricket (``sport: "cricket"``): the ``data`` shape behind ``schemas/cricket.avsc``."""

from __future__ import annotations

from typing import NotRequired

from typing_extensions import TypedDict

from ingester.convert.common import CommonData

__all__ = ["Batsman", "Bowler", "Data", "Event", "Innings", "Over", "Score"]


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
