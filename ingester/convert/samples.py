"""Protocol-shaped sample ``data`` for tests and the hot-path benchmark.

:func:`protocol_example` returns the examples of ``sportrix-protocol.md`` verbatim;
:func:`sample_frames` derives whole frames from them, soccer and cricket mixed, with the
``events`` history of a soccer match growing as it would over a match.
"""

from __future__ import annotations

import copy
import random
from typing import Any

import orjson

__all__ = ["protocol_example", "sample_frames"]

_EXAMPLES: dict[str, dict[str, Any]] = {
    "soccer": {
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
    },
    "cricket": {
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
    },
}  # fmt: skip


def protocol_example(sport: str) -> dict[str, Any]:
    """A fresh copy (safe to mutate) of the protocol's example ``data`` for ``sport``."""
    return copy.deepcopy(_EXAMPLES[sport])


def sample_frames(count: int, *, max_events: int = 20, seed: int = 0) -> list[bytes]:
    """``count`` update frames as raw JSON, alternating soccer and cricket.

    Soccer frames carry between 0 and ``max_events`` events (uniformly), like matches at
    random points of their course.
    """
    rng = random.Random(seed)
    frames = []
    for index in range(count):
        sport = "soccer" if index % 2 == 0 else "cricket"
        data = protocol_example(sport)
        data["match_id"] += index
        data["seq"] = index + 1
        if sport == "soccer":
            template = data["events"][0]
            data["events"] = [
                dict(template, id=event_id) for event_id in range(rng.randint(0, max_events))
            ]
        frames.append(orjson.dumps({"op": "update", "match_id": data["match_id"], "data": data}))
    return frames
