"""A cricket match engine: ball by ball, with extras, wickets, overs, innings and targets.

One step is one delivery, the end of an over, the end of an innings, the start of the next,
or the close/resumption of a day's play (Tests). Formats: ``T20`` (20 overs an innings),
``ODI`` (50), ``Other`` (10) and ``Test`` (four innings, declarations, 90 overs a day, a draw
when five days run out). Within an innings runs, wickets (never above 10) and balls only grow;
``scorecard`` keeps every innings, the current one last.
"""

from __future__ import annotations

import itertools
import random
from typing import Any

from sportrix_devkit.simulator.engines.base import MatchEngine, MatchInfo, draw_match
from sportrix_devkit.simulator.engines.soccer import squad

__all__ = ["BENCH_MATCHES", "DEFAULT_MATCHES", "FIRST_ID", "FORMAT_OVERS", "CricketEngine", "make"]

#: Match ids are ``90000``, ``90001``...
FIRST_ID = 90_000
#: Matches the benchmark plays when not told (``sportrix-ingester bench``).
BENCH_MATCHES = 200
#: Matches the demo follows when not told (``sportrix-ingester demo``).
DEMO_MATCHES = 2
#: Matches played when the command line does not say.
DEFAULT_MATCHES = 10

#: Overs per innings for limited-overs formats (``Test`` has no limit).
FORMAT_OVERS = {"T20": 20, "ODI": 50, "Other": 10}

_TEST_OVERS_PER_DAY = 90
_TEST_DAYS = 5
_BALL_SECONDS = 40.0
_OVER_BREAK_SECONDS = 60.0
_INNINGS_BREAK_SECONDS = 20 * 60.0
_OVERNIGHT_SECONDS = 17 * 3600.0

# (ball symbol, weight) per delivery outcome; runs are parsed from the symbol.
_OUTCOMES: dict[str, tuple[tuple[str, float], ...]] = {
    "limited": (
        ("0", 34), ("1", 32), ("2", 8), ("3", 1), ("4", 11), ("6", 4), ("W", 4),
        ("wd", 2.5), ("nb", 0.8), ("lb", 1.2), ("b", 0.4), ("2wd", 0.1),
    ),
    "Test": (
        ("0", 58), ("1", 20), ("2", 5), ("3", 1), ("4", 8), ("6", 0.6), ("W", 1.6),
        ("wd", 1), ("nb", 0.6), ("lb", 1.2), ("b", 0.5), ("4b", 0.1),
    ),
}  # fmt: skip
_OUTCOME_TABLES = {
    name: (tuple(s for s, _ in table), tuple(itertools.accumulate(w for _, w in table)))
    for name, table in _OUTCOMES.items()
}
_EXTRA_KINDS = {"wd": "wide", "nb": "no_ball", "lb": "leg_bye", "b": "bye"}
_SHOTS = ("drives through cover", "pulls to midwicket", "cuts past point", "flicks off the pads")
_DISMISSALS = ("bowled", "caught behind", "lbw", "caught at slip", "caught in the deep")


def _ball_runs(symbol: str) -> int:
    digits = "".join(ch for ch in symbol if ch.isdigit())
    if digits:
        return int(digits)
    return 1 if symbol in ("wd", "nb", "b", "lb") else 0


class CricketEngine(MatchEngine):
    """A cricket match in ``fmt`` (``T20``, ``ODI``, ``Test`` or ``Other``)."""

    sport = "cricket"

    def __init__(self, info: MatchInfo, rng: random.Random, *, fmt: str = "T20") -> None:
        super().__init__(info, rng)
        self.format = fmt
        self._max_overs = FORMAT_OVERS.get(fmt)  # None for Test
        self._squads = {info.home: squad(rng, 11), info.away: squad(rng, 11)}
        self._balls = 0  # legal deliveries in this innings
        self._over_runs = 0
        self._next_batter = 0
        self._bowlers: dict[str, dict[str, Any]] = {}  # name -> the bowler's figures
        self._bowler_balls: dict[str, int] = {}
        self._declared = False
        self._last_bowler: str | None = None
        self._day_overs = 0
        self._day = 1
        self._pending: str | None = None  # "over_end" | "innings_start" | "resume"
        data = self.data
        data["format"] = fmt
        # Keep the protocol's key order: format follows competition.
        for key in ("home", "away", "status", "start_time", "seq", "updated_at"):
            data[key] = data.pop(key)
        data.update(
            batting=info.home,
            bowling=info.away,
            innings=1,
            score={"runs": 0, "wickets": 0, "overs": "0.0"},
            target=None,
            over={"number": 1, "balls": []},
            batsmen=[],
            bowler=None,
            scorecard=[],
            last_event=None,
        )

    # -- public -------------------------------------------------------------------------

    def progress(self) -> float:
        """Roughly the fraction of the match's deliveries bowled."""
        if self.finished:
            return 1.0
        innings: int = self.data["innings"]
        if self._max_overs is None:
            per_innings = _TEST_OVERS_PER_DAY * 6
            done = (innings - 1) + min(self._balls / per_innings, 1.0)
            return min(done / 4, 0.99)
        done = (innings - 1) + self._balls / (self._max_overs * 6)
        return min(done / 2, 0.99)

    # -- the state machine --------------------------------------------------------------

    def _advance(self) -> float:
        data = self.data
        status = data["status"]
        if status == "scheduled":
            self._toss_and_start()
            return _BALL_SECONDS
        pending, self._pending = self._pending, None
        if pending == "innings_start":
            self._start_innings()
            return _BALL_SECONDS
        if pending == "resume":
            data["status"] = "live"
            self._day += 1
            self._day_overs = 0
            data["last_event"] = {"type": "over_end", "label": f"Day {self._day}: play resumes"}
            return _BALL_SECONDS
        if pending == "over_end":
            return self._end_over()
        return self._bowl()

    def _end_now(self) -> None:
        self._finish("Match abandoned" if self.data["status"] == "scheduled" else "Match ended")

    # -- deliveries -----------------------------------------------------------------------

    def _bowl(self) -> float:
        data = self.data
        rng = self.rng
        if data["bowler"] is None:
            data["bowler"] = self._choose_bowler()
        bowler: dict[str, Any] = data["bowler"]
        striker = self._striker()
        table = _OUTCOME_TABLES["Test" if self.format == "Test" else "limited"]
        symbols, weights = table
        symbol = rng.choices(symbols, cum_weights=weights)[0]
        runs = _ball_runs(symbol)
        legal = not symbol.endswith(("wd", "nb"))
        score = data["score"]
        data["over"]["balls"].append(symbol)
        score["runs"] += runs
        self._over_runs += runs
        if symbol.lstrip("0123456789") not in ("b", "lb"):
            bowler["runs"] += runs
        if symbol == "W":
            self._wicket(striker, bowler)
        elif symbol.isdigit():
            striker["runs"] += runs
            striker["balls"] += 1
            if runs == 4:
                striker["fours"] += 1
            elif runs == 6:
                striker["sixes"] += 1
            data["last_event"] = self._run_event(striker["name"], runs)
        else:
            if symbol.endswith("nb"):
                striker["balls"] += 1
            data["last_event"] = self._extra_event(symbol, runs)
        if legal:
            self._balls += 1
            self._bowler_ball(bowler)
        if symbol != "W" and runs % 2 == 1:
            self._swap_strike()
        score["overs"] = _overs(self._balls)
        self._sync_scorecard()
        if self._innings_over():
            return self._end_innings()
        if legal and self._balls % 6 == 0:
            self._pending = "over_end"
            return _OVER_BREAK_SECONDS
        return _BALL_SECONDS

    def _wicket(self, striker: dict[str, Any], bowler: dict[str, Any]) -> None:
        data = self.data
        striker["balls"] += 1
        bowler["wickets"] += 1
        data["score"]["wickets"] += 1
        how = self.rng.choice(_DISMISSALS)
        label = f"WICKET! {striker['name']} {how} for {striker['runs']}"
        data["last_event"] = {"type": "wicket", "label": label}
        batsmen: list[dict[str, Any]] = data["batsmen"]
        batsmen.remove(striker)
        if data["score"]["wickets"] < 10:
            batsmen.insert(0, self._new_batsman(on_strike=True))
        elif batsmen:
            batsmen[0]["on_strike"] = False

    def _bowler_ball(self, bowler: dict[str, Any]) -> None:
        balls = self._bowler_balls[bowler["name"]] + 1
        self._bowler_balls[bowler["name"]] = balls
        bowler["overs"] = _overs(balls)
        if balls % 6 == 0 and self._over_runs == 0:
            bowler["maidens"] += 1

    def _end_over(self) -> float:
        data = self.data
        number = data["over"]["number"]
        bowler = data["bowler"]
        label = f"End of over {number}: {self._over_runs} runs"
        if bowler is not None:
            label += f" off {bowler['name']}"
            self._last_bowler = bowler["name"]
        data["last_event"] = {"type": "over_end", "label": label}
        data["over"] = {"number": number + 1, "balls": []}
        data["bowler"] = None
        self._over_runs = 0
        self._swap_strike()
        self._day_overs += 1
        if self.format == "Test" and self._day_overs >= _TEST_OVERS_PER_DAY:
            if self._day >= _TEST_DAYS:
                self._finish("Match drawn")
                return 0.0
            data["status"] = "stumps"
            data["last_event"] = {"type": "over_end", "label": f"Stumps on day {self._day}"}
            self._pending = "resume"
            return _OVERNIGHT_SECONDS
        return _BALL_SECONDS

    # -- innings --------------------------------------------------------------------------

    def _toss_and_start(self) -> None:
        data = self.data
        if self.rng.random() < 0.5:
            data["batting"], data["bowling"] = self.info.away, self.info.home
        data["status"] = "live"
        self._open_innings()

    def _open_innings(self) -> None:
        data = self.data
        self._balls = 0
        self._over_runs = 0
        self._next_batter = 0
        self._bowlers = {}
        self._bowler_balls = {}
        self._last_bowler = None
        self._declared = False
        data["score"] = {"runs": 0, "wickets": 0, "overs": "0.0"}
        data["over"] = {"number": 1, "balls": []}
        data["bowler"] = None
        data["batsmen"] = [self._new_batsman(on_strike=True), self._new_batsman(on_strike=False)]
        data["scorecard"].append(
            {
                "innings": data["innings"],
                "team": data["batting"],
                "runs": 0,
                "wickets": 0,
                "overs": "0.0",
                "declared": False,
            }
        )

    def _innings_over(self) -> bool:
        data = self.data
        score = data["score"]
        if score["wickets"] >= 10:
            return True
        if self._max_overs is not None and self._balls >= self._max_overs * 6:
            return True
        target = data["target"]
        if target is not None and score["runs"] >= target:
            return True
        return self._declares()

    def _declares(self) -> bool:
        data = self.data
        if self.format != "Test" or data["innings"] > 3 or self._balls % 6 != 0:
            return False
        wanted = 450 if data["innings"] < 3 else 250
        self._declared = self._lead() >= wanted and self.rng.random() < 0.1
        return self._declared

    def _end_innings(self) -> float:
        data = self.data
        score = data["score"]
        team = data["batting"]
        declared = self._declared
        if declared:
            data["scorecard"][-1]["declared"] = True
        if self._match_decided():
            self._finish(self._result())
            return 0.0
        suffix = " declared" if declared else ""
        label = f"Innings end: {team} {score['runs']}/{score['wickets']}{suffix}"
        label += f" ({score['overs']} overs)"
        data["last_event"] = {"type": "innings_end", "label": label}
        data["status"] = "innings_break"
        data["batsmen"] = []
        data["bowler"] = None
        self._pending = "innings_start"
        return _INNINGS_BREAK_SECONDS

    def _start_innings(self) -> None:
        data = self.data
        data["innings"] += 1
        data["status"] = "live"
        data["batting"], data["bowling"] = data["bowling"], data["batting"]
        last_innings = 4 if self.format == "Test" else 2
        data["target"] = max(1, 1 - self._lead()) if data["innings"] == last_innings else None
        self._open_innings()

    def _lead(self) -> int:
        """Runs the batting side is ahead (negative: behind), over every innings."""
        data = self.data
        totals: dict[str, int] = {self.info.home: 0, self.info.away: 0}
        for entry in data["scorecard"]:
            totals[entry["team"]] += entry["runs"]
        batting = data["batting"]
        return totals[batting] - totals[data["bowling"]]

    def _match_decided(self) -> bool:
        data = self.data
        last_innings = 4 if self.format == "Test" else 2
        if data["innings"] >= last_innings:
            return True
        # Test: the side batting third may still be behind after it is bowled out.
        return self.format == "Test" and data["innings"] == 3 and self._lead() < 0

    def _result(self) -> str:
        data = self.data
        lead = self._lead()
        batting, bowling = data["batting"], data["bowling"]
        if lead > 0 or (data["target"] is not None and data["score"]["runs"] >= data["target"]):
            wickets = 10 - data["score"]["wickets"]
            return f"{batting} won by {wickets} wicket{'s' if wickets > 1 else ''}"
        if lead == 0:
            return "Match tied"
        if data["innings"] == 3:
            return f"{bowling} won by an innings and {-lead} runs"
        return f"{bowling} won by {-lead} runs"

    def _finish(self, result: str) -> None:
        data = self.data
        data["status"] = "finished"
        data["last_event"] = {"type": "match_end", "label": result}
        data["bowler"] = None

    # -- helpers --------------------------------------------------------------------------

    def _choose_bowler(self) -> dict[str, Any]:
        squad_names = self._squads[self.data["bowling"]]
        candidates = [name for name in squad_names[6:] if name != self._last_bowler]
        name = self.rng.choice(candidates)
        if name not in self._bowlers:
            self._bowlers[name] = {
                "name": name,
                "overs": "0.0",
                "maidens": 0,
                "runs": 0,
                "wickets": 0,
            }
            self._bowler_balls[name] = 0
        return self._bowlers[name]

    def _new_batsman(self, *, on_strike: bool) -> dict[str, Any]:
        name = self._squads[self.data["batting"]][self._next_batter]
        self._next_batter += 1
        return {"name": name, "runs": 0, "balls": 0, "fours": 0, "sixes": 0, "on_strike": on_strike}

    def _striker(self) -> dict[str, Any]:
        batsmen: list[dict[str, Any]] = self.data["batsmen"]
        return batsmen[0] if batsmen[0]["on_strike"] else batsmen[1]

    def _swap_strike(self) -> None:
        for batsman in self.data["batsmen"]:
            batsman["on_strike"] = not batsman["on_strike"]

    def _sync_scorecard(self) -> None:
        score = self.data["score"]
        self.data["scorecard"][-1].update(
            runs=score["runs"], wickets=score["wickets"], overs=score["overs"]
        )

    def _run_event(self, name: str, runs: int) -> dict[str, str]:
        short = name.split(". ", 1)[-1]
        if runs == 0:
            return {"type": "dot", "label": f"Dot ball to {short}"}
        if runs == 4:
            return {"type": "four", "label": f"FOUR! {short} {self.rng.choice(_SHOTS)}"}
        if runs == 6:
            return {"type": "six", "label": f"SIX! {short} clears the rope"}
        plural = "run" if runs == 1 else "runs"
        return {"type": "run", "label": f"{runs} {plural} to {short}"}

    @staticmethod
    def _extra_event(symbol: str, runs: int) -> dict[str, str]:
        kind = _EXTRA_KINDS[symbol.lstrip("0123456789")]
        return {"type": kind, "label": f"{kind.replace('_', ' ').capitalize()}: {runs} run(s)"}


def _overs(balls: int) -> str:
    return f"{balls // 6}.{balls % 6}"


# (competition, format, teams)
_COMPETITIONS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
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


def make(seed: int, match_id: int, now: float) -> CricketEngine:
    """Match ``match_id`` of the catalogue of ``seed``."""
    info, rng, fmt = draw_match(seed, match_id, now, _COMPETITIONS)
    return CricketEngine(info, rng, fmt=fmt)
