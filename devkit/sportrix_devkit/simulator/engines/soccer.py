"""A soccer match engine: a running clock, periods, goals, cards, substitutions and VAR.

One step is one second of play (the clock ticks) or one transition (kick-off, half-time,
extra time, the shoot-out, full time). Incidents happen with per-second probabilities tuned
to a typical match: about 25 shots, 2.7 goals, 22 fouls, 10 corners, 4 yellow cards.
Counting statistics only ever grow, goals are never taken back (VAR only confirms), and
``events`` is append-only with ids 1, 2, 3...
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any, Literal

from sportrix_devkit.simulator.engines.base import MatchEngine, MatchInfo, draw_match

__all__ = [
    "BENCH_MATCHES",
    "DEFAULT_MATCHES",
    "DEMO_MATCHES",
    "FIRST_ID",
    "PERIODS",
    "SoccerEngine",
    "make",
    "squad",
]

#: Match ids are ``41000``, ``41001``...
FIRST_ID = 41_000
#: Matches the benchmark plays when not told (``sportrix-ingester bench``).
BENCH_MATCHES = 800
#: Matches the demo follows when not told (``sportrix-ingester demo``).
DEMO_MATCHES = 3
#: Matches played when the command line does not say.
DEFAULT_MATCHES = 20

#: Clock periods in the order a match moves through them.
PERIODS = ("1H", "HT", "2H", "ET1", "ET2", "PEN", "FT")

Side = Literal["home", "away"]
_SIDES: tuple[Side, Side] = ("home", "away")
_STAT_NAMES = (
    "shots",
    "shots_on_target",
    "corners",
    "fouls",
    "offsides",
    "yellow_cards",
    "red_cards",
)
# (period, first minute, regular length in minutes)
_PLAYED_PERIODS = {"1H": (0, 45), "2H": (45, 45), "ET1": (90, 15), "ET2": (105, 15)}
_HALFTIME_SECONDS = 15 * 60
_EXTRA_TIME_BREAK_SECONDS = 5 * 60
_NOMINAL_SECONDS = 95 * 60
_MAX_SUBSTITUTIONS = 5

# Per-second probabilities while the ball is in play.
_P_PHASE_CHANGE = 0.07
_P_SHOT = 0.0046
_P_ON_TARGET = 0.35
_P_GOAL_FROM_ON_TARGET = 0.3
_P_CORNER = 0.0019
_P_FOUL = 0.0041
_P_YELLOW_FROM_FOUL = 0.15
_P_RED_FROM_FOUL = 0.008
_P_OFFSIDE = 0.0008
_P_PENALTY = 0.00005
_P_PENALTY_SCORED = 0.76
_P_OWN_GOAL = 0.00001
_P_SUBSTITUTION = 0.0012  # from the 55th minute on
_P_VAR_AFTER_GOAL = 0.2

_FIRST_NAMES = "ABCDEFGHJKLMNOPRSTVW"
_SURNAMES = (
    "Silva", "Martinez", "Kane", "Saka", "Rice", "Odegaard", "Foden", "Walker", "Stones",
    "Mount", "Havertz", "Nunez", "Salah", "Diaz", "Gakpo", "Alisson", "Dias", "Rodri",
    "Bernardo", "Haaland", "Alvarez", "Palmer", "Enzo", "Caicedo", "Sterling", "Jackson",
    "Gordon", "Isak", "Trippier", "Guimaraes", "Bruno", "Rashford", "Garnacho", "Onana",
    "Mainoo", "Son", "Maddison", "Romero", "Udogie", "Watkins", "Bailey", "McGinn",
    "Mbeumo", "Wissa", "Raya", "Saliba", "Gabriel", "White", "Zinchenko", "Trossard",
)  # fmt: skip


def squad(rng: random.Random, size: int = 18) -> list[str]:
    """``size`` distinct player names like ``B. Saka``."""
    names: list[str] = []
    while len(names) < size:
        name = f"{rng.choice(_FIRST_NAMES)}. {rng.choice(_SURNAMES)}"
        if name not in names:
            names.append(name)
    return names


class SoccerEngine(MatchEngine):
    """A soccer match; ``extra_time`` allows ET and penalties after a draw (knockout ties)."""

    sport = "soccer"
    append_only = "events"

    def __init__(self, info: MatchInfo, rng: random.Random, *, extra_time: bool = False) -> None:
        super().__init__(info, rng)
        self.extra_time = extra_time
        self._period_seconds = 0  # seconds played in the current period
        self._period_length = 0  # seconds, added time included once announced
        self._added_announced = False
        self._possession = {"home": 1, "away": 1}  # seconds with the ball
        self._squads = {side: squad(rng) for side in _SIDES}
        self._on_pitch = {side: list(self._squads[side][:11]) for side in _SIDES}
        self._bench = {side: list(self._squads[side][11:]) for side in _SIDES}
        self._substitutions = {"home": 0, "away": 0}
        self._booked: set[str] = set()
        self._var_pending: dict[str, Any] | None = None
        self._shootout: list[tuple[Side, bool]] = []
        self.data.update(
            score={"home": 0, "away": 0},
            clock={"minute": 0, "second": 0, "period": "1H", "running": False, "added_time": 0},
            phase={"code": "kickoff", "label": "Kick-off soon", "team": None},
            stats={
                "possession": {"home": 50, "away": 50},
                **{name: {"home": 0, "away": 0} for name in _STAT_NAMES},
            },
            events=[],
        )

    # -- public -------------------------------------------------------------------------

    def progress(self) -> float:
        """Fraction of a nominal 95-minute match played."""
        clock = self.data["clock"]
        if self.finished:
            return 1.0
        played: int = clock["minute"] * 60 + clock["second"]
        return min(played / _NOMINAL_SECONDS, 0.99)

    # -- the state machine --------------------------------------------------------------

    def _advance(self) -> float:
        data = self.data
        clock = data["clock"]
        status = data["status"]
        if status == "scheduled":
            return self._start_period("1H")
        if status == "halftime":
            return self._start_period("2H")
        if clock["period"] == "PEN":
            return self._take_shootout_kick()
        if not clock["running"]:  # the break before extra time, or between its halves
            return self._start_period("ET1" if clock["period"] == "2H" else "ET2")
        if self._var_pending is not None:
            return self._resolve_var()
        self._tick()
        if self._period_seconds >= self._period_length:
            return self._end_period()
        return 1.0

    def _end_now(self) -> None:
        self._finish_match()

    def _tick(self) -> None:
        rng = self.rng
        self._period_seconds += 1
        clock = self.data["clock"]
        first_minute, length_minutes = _PLAYED_PERIODS[clock["period"]]
        total = first_minute * 60 + self._period_seconds
        clock["minute"], clock["second"] = divmod(total, 60)
        if not self._added_announced and self._period_seconds >= length_minutes * 60 - 60:
            self._added_announced = True
            added = rng.randint(1, 3) if length_minutes == 15 else rng.randint(1, 6)
            clock["added_time"] = added
            self._period_length = (length_minutes + added) * 60
        team: Side | None = self.data["phase"]["team"]
        self._possession[team or "home"] += 1
        if self._period_seconds % 10 == 0:
            self._update_possession()
        if rng.random() < _P_PHASE_CHANGE:
            self._change_phase()
        self._maybe_incident()

    def _maybe_incident(self) -> None:
        roll = self.rng.random()
        if roll >= _P_ANY_INCIDENT:
            return
        side: Side = self.data["phase"]["team"] or self.rng.choice(_SIDES)
        for probability, incident in _INCIDENTS:
            if roll < probability:
                incident(self, side)
                return
            roll -= probability

    # -- incidents ------------------------------------------------------------------------

    def _shot(self, side: Side) -> None:
        rng = self.rng
        self._count("shots", side)
        self._set_phase("attack", f"{self._team(side)} shoot", side)
        if rng.random() < _P_ON_TARGET:
            self._count("shots_on_target", side)
            if rng.random() < _P_GOAL_FROM_ON_TARGET:
                scorer = rng.choice(self._on_pitch[side])
                self._goal(side, "goal", scorer, f"Goal! {scorer} ({self._team(side)})")

    def _goal(self, side: Side, kind: str, player: str | None, label: str) -> None:
        self.data["score"][side] += 1
        self._add_event(kind, side, player, label)
        self._set_phase("kickoff", f"Goal for {self._team(side)}! Kick-off", self._other(side))
        if self.rng.random() < _P_VAR_AFTER_GOAL:
            self._var_pending = {"team": side, "subject": "goal"}
            self._set_phase("var_check", "VAR checking the goal", side)

    def _resolve_var(self) -> float:
        pending = self._var_pending
        assert pending is not None
        self._var_pending = None
        side = pending["team"]
        label = f"VAR: {pending['subject']} for {self._team(side)} confirmed"
        self._add_event("var", side, None, label)
        self._set_phase("kickoff", "Play resumes after VAR", self._other(side))
        return 1.0

    def _foul(self, side: Side) -> None:
        rng = self.rng
        offender_side = self._other(side)
        self._count("fouls", offender_side)
        self._set_phase("free_kick", f"Free kick to {self._team(side)}", side)
        offender = rng.choice(self._on_pitch[offender_side])
        roll = rng.random()
        if roll < _P_RED_FROM_FOUL or (roll < _P_YELLOW_FROM_FOUL and offender in self._booked):
            self._count("red_cards", offender_side)
            if roll >= _P_RED_FROM_FOUL:
                self._count("yellow_cards", offender_side)
            self._on_pitch[offender_side].remove(offender)
            team = self._team(offender_side)
            self._add_event("red_card", offender_side, offender, f"Red card: {offender} ({team})")
        elif roll < _P_YELLOW_FROM_FOUL:
            self._booked.add(offender)
            self._count("yellow_cards", offender_side)
            team = self._team(offender_side)
            self._add_event(
                "yellow_card", offender_side, offender, f"Yellow card: {offender} ({team})"
            )

    def _corner(self, side: Side) -> None:
        self._count("corners", side)
        self._set_phase("corner", f"Corner to {self._team(side)}", side)

    def _offside(self, side: Side) -> None:
        self._count("offsides", side)
        self._set_phase("free_kick", f"Offside: {self._team(side)}", self._other(side))

    def _penalty(self, side: Side) -> None:
        rng = self.rng
        taker = rng.choice(self._on_pitch[side])
        team = self._team(side)
        self._count("shots", side)
        if rng.random() < _P_PENALTY_SCORED:
            self._count("shots_on_target", side)
            self._goal(side, "penalty_goal", taker, f"Penalty scored! {taker} ({team})")
        else:
            self._add_event("penalty_missed", side, taker, f"Penalty missed: {taker} ({team})")
            self._set_phase("goal_kick", f"Goal kick to {self._team(self._other(side))}", None)

    def _own_goal(self, side: Side) -> None:
        defender_side = self._other(side)
        player = self.rng.choice(self._on_pitch[defender_side])
        label = f"Own goal! {player} ({self._team(defender_side)})"
        self._goal(side, "own_goal", player, label)

    def _sub(self, side: Side) -> None:
        if self.data["clock"]["minute"] < 55 or self._substitutions[side] >= _MAX_SUBSTITUTIONS:
            return
        rng = self.rng
        leaving = rng.choice(self._on_pitch[side])
        joining = self._bench[side].pop(rng.randrange(len(self._bench[side])))
        self._on_pitch[side][self._on_pitch[side].index(leaving)] = joining
        self._substitutions[side] += 1
        team = self._team(side)
        label = f"Substitution ({team}): {joining} on, {leaving} off"
        self._add_event("substitution", side, joining, label)
        self._set_phase("stoppage", f"Substitution for {team}", side)

    # -- periods --------------------------------------------------------------------------

    def _start_period(self, period: str) -> float:
        data = self.data
        data["status"] = "live"
        first_minute, length_minutes = _PLAYED_PERIODS[period]
        self._period_seconds = 0
        self._period_length = length_minutes * 60
        self._added_announced = False
        data["clock"].update(
            minute=first_minute, second=0, period=period, running=True, added_time=0
        )
        kicking: Side = "home" if period in ("1H", "ET1") else "away"
        self._set_phase("kickoff", f"Kick-off: {self._team(kicking)}", kicking)
        self._add_event("period_start", None, None, f"{_PERIOD_NAMES[period]} begins")
        return 1.0

    def _end_period(self) -> float:
        data = self.data
        clock = data["clock"]
        period = clock["period"]
        self._add_event("period_end", None, None, f"{_PERIOD_NAMES[period]} ends")
        clock.update(running=False, added_time=0)
        level = data["score"]["home"] == data["score"]["away"]
        if period == "1H":
            data["status"] = "halftime"
            clock.update(minute=45, second=0, period="HT")
            self._set_phase("halftime", "Half-time", None)
            return _HALFTIME_SECONDS
        if period == "2H" and self.extra_time and level:
            self._set_phase("stoppage", "Extra time to come", None)
            return _EXTRA_TIME_BREAK_SECONDS
        if period == "ET1":
            self._set_phase("stoppage", "Extra time half-time", None)
            return 60.0
        if period == "ET2" and level:
            clock.update(minute=120, second=0, period="PEN")
            self._set_phase("penalty", "Penalty shoot-out", None)
            return 60.0
        self._finish_match()
        return 0.0

    def _take_shootout_kick(self) -> float:
        rng = self.rng
        side: Side = _SIDES[len(self._shootout) % 2]
        scored = rng.random() < _P_PENALTY_SCORED
        self._shootout.append((side, scored))
        taker = rng.choice(self._on_pitch[side])
        outcome = "scores" if scored else "misses"
        kind = "penalty_goal" if scored else "penalty_missed"
        self._add_event(kind, side, taker, f"Shoot-out: {taker} ({self._team(side)}) {outcome}")
        home, away = self._shootout_score()
        self._set_phase("penalty", f"Shoot-out {home}-{away}", side)
        if self._shootout_decided():
            self._finish_match()
        return 30.0

    def _shootout_score(self) -> tuple[int, int]:
        home = sum(1 for side, scored in self._shootout if scored and side == "home")
        away = sum(1 for side, scored in self._shootout if scored and side == "away")
        return home, away

    def _shootout_decided(self) -> bool:
        kicks = len(self._shootout)
        home, away = self._shootout_score()
        home_left = max(0, 5 - (kicks + 1) // 2)
        away_left = max(0, 5 - kicks // 2)
        if kicks <= 10:
            return home + home_left < away or away + away_left < home
        return kicks % 2 == 0 and home != away

    def _finish_match(self) -> None:
        data = self.data
        self._add_event("period_end", None, None, "Full-time")
        data["clock"].update(period="FT", running=False, added_time=0)
        data["status"] = "finished"
        self._set_phase("fulltime", self._result_label(), None)

    # -- helpers --------------------------------------------------------------------------

    def _result_label(self) -> str:
        score = self.data["score"]
        label = f"Full-time: {self.info.home} {score['home']}-{score['away']} {self.info.away}"
        if self._shootout:
            home, away = self._shootout_score()
            winner = self.info.home if home > away else self.info.away
            label += f" ({winner} win {max(home, away)}-{min(home, away)} on penalties)"
        return label

    def _change_phase(self) -> None:
        rng = self.rng
        phase = self.data["phase"]
        side: Side = phase["team"] or rng.choice(_SIDES)
        if rng.random() < 0.3:
            side = self._other(side)
        team = self._team(side)
        code, label = rng.choice(
            (
                ("in_play", "In play"),
                ("attack", f"{team} attack"),
                ("attack", f"{team} attack"),
                ("dangerous_attack", f"Dangerous attack by {team}"),
                ("throw_in", f"Throw-in to {team}"),
                ("goal_kick", f"Goal kick to {team}"),
            )
        )
        self._set_phase(code, label, side)

    def _set_phase(self, code: str, label: str, team: Side | None) -> None:
        phase = self.data["phase"]
        phase["code"], phase["label"], phase["team"] = code, label, team

    def _update_possession(self) -> None:
        home, away = self._possession["home"], self._possession["away"]
        share = round(100 * home / (home + away))
        possession = self.data["stats"]["possession"]
        possession["home"], possession["away"] = share, 100 - share

    def _count(self, stat: str, side: Side) -> None:
        self.data["stats"][stat][side] += 1

    def _add_event(self, kind: str, side: Side | None, player: str | None, label: str) -> None:
        events: list[dict[str, Any]] = self.data["events"]
        clock = self.data["clock"]
        events.append(
            {
                "id": len(events) + 1,
                "minute": clock["minute"],
                "second": clock["second"],
                "type": kind,
                "team": side,
                "player": player,
                "label": label,
            }
        )

    def _team(self, side: Side) -> str:
        return self.info.home if side == "home" else self.info.away

    @staticmethod
    def _other(side: Side) -> Side:
        return "away" if side == "home" else "home"


_PERIOD_NAMES = {
    "1H": "First half",
    "2H": "Second half",
    "ET1": "Extra time, first half",
    "ET2": "Extra time, second half",
}

_INCIDENTS: tuple[tuple[float, Callable[[SoccerEngine, Side], None]], ...] = (
    (_P_SHOT, SoccerEngine._shot),
    (_P_FOUL, SoccerEngine._foul),
    (_P_CORNER, SoccerEngine._corner),
    (_P_OFFSIDE, SoccerEngine._offside),
    (_P_SUBSTITUTION, SoccerEngine._sub),
    (_P_PENALTY, SoccerEngine._penalty),
    (_P_OWN_GOAL, SoccerEngine._own_goal),
)
_P_ANY_INCIDENT = sum(probability for probability, _ in _INCIDENTS)


# (competition, knockout, teams)
_COMPETITIONS: tuple[tuple[str, bool, tuple[str, ...]], ...] = (
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


def make(seed: int, match_id: int, now: float) -> SoccerEngine:
    """Match ``match_id`` of the catalogue of ``seed``."""
    info, rng, knockout = draw_match(seed, match_id, now, _COMPETITIONS)
    return SoccerEngine(info, rng, extra_time=knockout)
