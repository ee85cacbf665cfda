"""The catalogue: which matches the simulator plays, each already at its own point of play.

Deterministic for a seed: match ``i`` of a sport always gets the same competition, teams,
starting status and sequence of states (every engine has its own ``random.Random`` seeded
from the seed and its match id). Of every ten matches, one is scheduled to start soon, one is
finished and eight are live at different points of play (5% to 85% through).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from functools import partial

from sportrix_devkit.simulator.config import CRICKET_FIRST_ID, SOCCER_FIRST_ID
from sportrix_devkit.simulator.engines import CricketEngine, MatchEngine, MatchInfo, SoccerEngine
from sportrix_devkit.simulator.engines.base import iso_seconds

__all__ = ["build_catalogue"]

# (competition, knockout, teams)
_SOCCER_COMPETITIONS: tuple[tuple[str, bool, tuple[str, ...]], ...] = (
    ("Premier League", False, ("Arsenal", "Chelsea", "Liverpool", "Manchester City",
                               "Manchester United", "Tottenham", "Newcastle", "Aston Villa")),
    ("La Liga", False, ("Real Madrid", "Barcelona", "Atletico Madrid", "Sevilla",
                        "Real Sociedad", "Villarreal", "Valencia", "Athletic Club")),
    ("Serie A", False, ("Inter", "Milan", "Juventus", "Napoli", "Roma", "Lazio", "Atalanta",
                        "Fiorentina")),
    ("Bundesliga", False, ("Bayern Munich", "Dortmund", "Leverkusen", "Leipzig", "Stuttgart",
                           "Frankfurt", "Wolfsburg", "Freiburg")),
    ("FA Cup", True, ("Brighton", "West Ham", "Everton", "Fulham", "Brentford", "Wolves",
                      "Crystal Palace", "Bournemouth")),
    ("Champions League", True, ("PSG", "Benfica", "Porto", "Ajax", "Celtic", "Salzburg",
                                "Feyenoord", "Club Brugge")),
)  # fmt: skip
# (competition, format, teams)
_CRICKET_COMPETITIONS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("IPL", "T20", ("Mumbai Indians", "Chennai Super Kings", "Royal Challengers",
                    "Kolkata Knight Riders", "Rajasthan Royals", "Delhi Capitals")),
    ("ODI Series", "ODI", ("India", "Australia", "England", "Pakistan", "South Africa",
                           "New Zealand")),
    ("Test Series", "Test", ("India", "Australia", "England", "Sri Lanka", "West Indies",
                             "Bangladesh")),
    ("T20 World Cup", "T20", ("Afghanistan", "Ireland", "Netherlands", "Scotland", "Zimbabwe",
                              "Nepal")),
    ("European Cricket League", "Other", ("Spain", "Italy", "Germany", "France", "Austria",
                                          "Romania")),
)  # fmt: skip
_LIVE_PROGRESS = (0.05, 0.85)
_STARTS_IN_SECONDS = (2 * 60, 20 * 60)


def build_catalogue(
    seed: int, soccer: int, cricket: int, now: float, speed: float = 1.0
) -> list[MatchEngine]:
    """Every match, soccer first, each with its initial state published (``seq`` >= 1).

    ``now`` is the wall-clock time stamped on the initial states; a scheduled match's
    ``start_time`` is when it will kick off at ``speed`` times real time.
    """
    makers: list[Callable[[], MatchEngine]] = [
        *(partial(_soccer, seed, SOCCER_FIRST_ID + index, now) for index in range(soccer)),
        *(partial(_cricket, seed, CRICKET_FIRST_ID + index, now) for index in range(cricket)),
    ]
    return [_started(make, index % 10, now, speed) for index, make in enumerate(makers)]


def _soccer(seed: int, match_id: int, now: float) -> MatchEngine:
    rng = random.Random(f"{seed}:{match_id}")
    competition, knockout, teams = rng.choice(_SOCCER_COMPETITIONS)
    home, away = rng.sample(teams, 2)
    info = MatchInfo(match_id, competition, home, away, now)
    return SoccerEngine(info, rng, extra_time=knockout)


def _cricket(seed: int, match_id: int, now: float) -> MatchEngine:
    rng = random.Random(f"{seed}:{match_id}")
    competition, fmt, teams = rng.choice(_CRICKET_COMPETITIONS)
    home, away = rng.sample(teams, 2)
    info = MatchInfo(match_id, competition, home, away, now)
    return CricketEngine(info, rng, fmt=fmt)


def _started(make: Callable[[], MatchEngine], slot: int, now: float, speed: float) -> MatchEngine:
    """Scheduled (slot 7), finished (slot 9) or live part-way through (the rest)."""
    engine = make()
    engine.publish_initial(now)
    if slot == 7:
        engine.next_delay = engine.rng.uniform(*_STARTS_IN_SECONDS)
        engine.data["start_time"] = iso_seconds(now + engine.next_delay / speed)
        return engine
    target = 1.0 if slot == 9 else engine.rng.uniform(*_LIVE_PROGRESS)
    played = engine.fast_forward(target, now)
    if engine.finished and slot != 9:
        # It ended sooner than its format's nominal length (a chase won early): replay
        # the same match to the same fraction of the changes it really took.
        changes = int((engine.seq - 1) * target)
        engine = make()
        engine.publish_initial(now)
        played = engine.fast_forward(1.0, now, changes)
    engine.data["start_time"] = iso_seconds(now - played / speed)
    return engine
