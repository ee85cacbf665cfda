"""Match engines: invariants over many seeds, shapes the project's converters accept."""

from __future__ import annotations

import itertools
import random
import time
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingester.convert.registry import load_converters
from sportrix_devkit.simulator.catalogue import build_catalogue
from sportrix_devkit.simulator.core import MatchFeed
from sportrix_devkit.simulator.engines import MatchEngine, MatchInfo, SampleEngine
from sportrix_devkit.simulator.engines.cricket import CricketEngine
from sportrix_devkit.simulator.engines.sample import CHANGES
from sportrix_devkit.simulator.engines.soccer import PERIODS, SoccerEngine

NOW = 1_800_000_000.0
COUNTS = ("shots", "shots_on_target", "corners", "fouls", "offsides", "yellow_cards", "red_cards")
CONVERTERS = load_converters()


def play(engine: MatchEngine, steps: int) -> list[dict[str, Any]]:
    """Every state from the first, as decoded from the feed's JSON (the frames' bytes)."""
    feed = MatchFeed(engine, history=10_000)
    engine.publish_initial(NOW)
    feed.refresh()
    states = [orjson.loads(feed.data_json)]
    for _ in range(steps):
        if engine.step(NOW) is None and engine.finished and states[-1]["status"] == "finished":
            break
        feed.refresh()
        frame = orjson.loads(feed.update_frame)
        assert frame["op"] == "update"
        assert frame["match_id"] == engine.match_id
        assert frame["data"] == orjson.loads(feed.data_json) == engine.data
        states.append(frame["data"])
    return states


def check_common(states: list[dict[str, Any]]) -> None:
    assert states[0]["seq"] == 1
    for before, after in itertools.pairwise(states):
        assert after["seq"] == before["seq"] + 1
        assert after != {**before, "seq": after["seq"], "updated_at": after["updated_at"]}
        assert after["match_id"] == before["match_id"]
    for state in [*states[::101], states[-1]]:  # the project's converter accepts the shape
        CONVERTERS.get(state["sport"]).convert("update", state, 0)  # type: ignore[union-attr]


def clock_key(state: dict[str, Any]) -> tuple[int, int, int]:
    clock = state["clock"]
    return PERIODS.index(clock["period"]), clock["minute"], clock["second"]


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 2**32), knockout=st.booleans())
def test_soccer_invariants(seed: int, knockout: bool) -> None:
    info = MatchInfo(41000, "FA Cup", "Arsenal", "Chelsea", NOW)
    states = play(SoccerEngine(info, random.Random(seed), extra_time=knockout), 20_000)
    check_common(states)
    assert states[-1]["status"] == "finished"
    assert states[-1]["clock"]["period"] == "FT"
    for before, after in itertools.pairwise(states):
        for side in ("home", "away"):
            assert after["score"][side] >= before["score"][side]
            for stat in COUNTS:
                assert after["stats"][stat][side] >= before["stats"][stat][side]
        assert clock_key(after) >= clock_key(before)
        assert after["events"][: len(before["events"])] == before["events"]
        possession = after["stats"]["possession"]
        assert possession["home"] + possession["away"] == 100
    events = states[-1]["events"]
    assert [e["id"] for e in events] == list(range(1, len(events) + 1))
    goals = sum(e["type"] in ("goal", "own_goal", "penalty_goal") for e in events)
    shootout = sum(
        e["type"] == "penalty_goal" and e["label"].startswith("Shoot-out") for e in events
    )
    assert goals - shootout == states[-1]["score"]["home"] + states[-1]["score"]["away"]
    if not knockout:
        assert {s["clock"]["period"] for s in states} <= {"1H", "HT", "2H", "FT"}


def balls(overs: str) -> int:
    completed, ball = overs.split(".")
    assert 0 <= int(ball) <= 5
    return int(completed) * 6 + int(ball)


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 2**32), fmt=st.sampled_from(["T20", "ODI", "Test", "Other"]))
def test_cricket_invariants(seed: int, fmt: str) -> None:
    info = MatchInfo(90000, "Series", "India", "Australia", NOW)
    states = play(CricketEngine(info, random.Random(seed), fmt=fmt), 50_000)
    check_common(states)
    assert states[-1]["status"] == "finished"
    assert states[-1]["last_event"]["type"] == "match_end"
    for before, after in itertools.pairwise(states):
        assert after["innings"] >= before["innings"]
        assert 0 <= after["score"]["wickets"] <= 10
        assert len(after["batsmen"]) <= 2
        if after["innings"] == before["innings"]:
            assert after["score"]["runs"] >= before["score"]["runs"]
            assert after["score"]["wickets"] >= before["score"]["wickets"]
            assert balls(after["score"]["overs"]) >= balls(before["score"]["overs"])
            assert after["over"]["number"] >= before["over"]["number"]
        # Completed innings on the scorecard never change.
        assert after["scorecard"][: len(before["scorecard"]) - 1] == before["scorecard"][:-1]
    final = states[-1]
    assert len(final["scorecard"]) <= (4 if fmt == "Test" else 2)
    if fmt != "Test":
        first_innings = [s for s in states if s["innings"] == 1 and s["status"] != "scheduled"]
        assert all(s["target"] is None for s in first_innings)


def test_catalogue_is_deterministic_and_mixed() -> None:
    def snapshot(seed: int) -> list[dict[str, Any]]:
        engines = build_catalogue(seed, {"soccer": 20, "cricket": 10}, NOW)
        return [{**e.data, "updated_at": None} for e in engines]

    first, again, other = snapshot(5), snapshot(5), snapshot(6)
    assert first == again
    assert first != other
    ids = [m["match_id"] for m in first]
    assert ids == list(range(41000, 41020)) + list(range(90000, 90010))
    statuses = [m["status"] for m in first]
    assert statuses.count("scheduled") == 3
    assert statuses.count("finished") == 3
    assert sum(s not in ("scheduled", "finished") for s in statuses) == 24
    assert len({m["seq"] for m in first}) > 10  # live at different points of play


def test_updated_at_is_iso_utc_with_milliseconds() -> None:
    engine = build_catalogue(1, {"soccer": 1}, time.time())[0]
    engine.step(1_800_000_000.12)
    assert engine.data["updated_at"] == "2027-01-15T08:00:00.120Z"
    assert engine.data["start_time"].endswith("Z")


@pytest.mark.parametrize("fmt", ["T20", "Test"])
def test_finish_ends_a_match_once(fmt: str) -> None:
    engine = CricketEngine(MatchInfo(90000, "S", "A", "B", NOW), random.Random(1), fmt=fmt)
    engine.publish_initial(NOW)
    engine.step(NOW)
    assert engine.finish(NOW) is True
    assert engine.data["status"] == "finished"
    assert engine.seq == 3
    assert engine.finish(NOW) is False
    assert engine.step(NOW) is None
    assert engine.seq == 3


@pytest.mark.parametrize("sport", CONVERTERS.sports)
def test_the_generic_engine_plays_any_sport_from_its_sample(sport: str) -> None:
    """A sport without an engine of its own is served from its ``SAMPLE``: every state is
    valid for the sport's converter, and the match goes live, then ends."""
    entry = CONVERTERS.sport(sport)
    assert entry is not None
    assert entry.sample is not None
    info = MatchInfo(123, "Cup", "A", "B", NOW)
    states = play(SampleEngine(sport, entry.sample, info, random.Random(1)), CHANGES + 5)
    assert [state["seq"] for state in states] == list(range(1, CHANGES + 2))
    assert [state["status"] for state in states[:2]] == ["scheduled", "live"]
    assert states[-1]["status"] == "finished"
    for state in states:
        assert (state["match_id"], state["home"], state["sport"]) == (123, "A", sport)
        entry.converter.convert("update", state, 0)
