"""The catalogue: which matches the simulator plays, each already at its own point of play.

Deterministic for a seed: match ``i`` of a sport always gets the same competition, teams,
starting status and sequence of states (every engine has its own ``random.Random`` seeded
from the seed and its match id). Of every ten matches, one is scheduled to start soon, one is
finished and eight are live at different points of play (5% to 85% through).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial

from sportrix_devkit.simulator.engines import MatchEngine, engine_kinds
from sportrix_devkit.simulator.engines.base import iso_seconds

__all__ = ["build_catalogue"]

_LIVE_PROGRESS = (0.05, 0.85)
_STARTS_IN_SECONDS = (2 * 60, 20 * 60)


def build_catalogue(
    seed: int, matches: Mapping[str, int], now: float, speed: float = 1.0
) -> list[MatchEngine]:
    """``matches[sport]`` matches of each sport (see :func:`engine_kinds`), the sports in
    the order of their first match id, each with its initial state published (``seq`` >= 1).

    ``now`` is the wall-clock time stamped on the initial states; a scheduled match's
    ``start_time`` is when it will kick off at ``speed`` times real time.
    """
    makers: list[Callable[[], MatchEngine]] = [
        partial(kind.make, seed, kind.first_id + index, now)
        for kind in engine_kinds().values()
        for index in range(matches.get(kind.sport, 0))
    ]
    return [_started(make, index % 10, now, speed) for index, make in enumerate(makers)]


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
