"""Pure match engines: state + a ``random.Random`` + time in, next state out.

:func:`engine_kinds` gives an engine for every sport of the registry
(:mod:`ingester.convert.registry`): the engine module the sport module names (``ENGINE``, a
module path: a plugin sport's own engine), else the module of this package named after the
sport; such a module defines ``make(seed, match_id, now)``, ``FIRST_ID`` and
``DEFAULT_MATCHES`` (and may define ``BENCH_MATCHES`` and ``DEMO_MATCHES``). A sport
without one is played by a :class:`SampleEngine` from its ``SAMPLE``.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from types import ModuleType
from typing import Any

from ingester.convert.registry import discover_sport_modules
from sportrix_devkit.simulator.engines.base import MatchEngine, MatchInfo, iso_millis, iso_seconds
from sportrix_devkit.simulator.engines.sample import SampleEngine

__all__ = [
    "EngineKind",
    "MatchEngine",
    "MatchInfo",
    "SampleEngine",
    "engine_kinds",
    "iso_millis",
    "iso_seconds",
]


@dataclass(frozen=True, slots=True)
class EngineKind:
    """How the simulator plays one sport."""

    sport: str
    #: The first match id; the sport's matches are ``first_id``, ``first_id + 1``...
    first_id: int
    #: Matches played when the command line does not say.
    default_matches: int
    #: Matches the benchmark plays (``sportrix-ingester bench``) when not told.
    bench_matches: int
    #: Matches the demo follows (``sportrix-ingester demo``) when not told.
    demo_matches: int
    #: ``make(seed, match_id, now)``: the engine of one match of the catalogue of ``seed``.
    make: Callable[[int, int, float], MatchEngine]


def _sample_engine(
    sport: str, sample: Mapping[str, Any], seed: int, match_id: int, now: float
) -> MatchEngine:
    info = MatchInfo(match_id, sample["competition"], sample["home"], sample["away"], now)
    return SampleEngine(sport, sample, info, random.Random(f"{seed}:{match_id}"))


def _engine_module(sport: str, sport_module: ModuleType) -> ModuleType | None:
    """The sport's engine module: the one its module names (``ENGINE``), else this package's
    module named after the sport, if any."""
    name = getattr(sport_module, "ENGINE", None) or f"{__name__}.{sport}"
    module = importlib.import_module(name) if importlib.util.find_spec(name) else None
    return module if module is not None and hasattr(module, "make") else None


@functools.cache
def engine_kinds() -> dict[str, EngineKind]:
    """The engine of every sport of the registry that can be played, by sport, lowest first
    id first (the sport modules are found, not their converters built: the CLI lists them)."""
    kinds = []
    for sport, sport_module in discover_sport_modules().items():
        engine = _engine_module(sport, sport_module)
        sample: Mapping[str, Any] | None = getattr(sport_module, "SAMPLE", None)
        if engine is not None:
            bench, demo = getattr(engine, "BENCH_MATCHES", 0), getattr(engine, "DEMO_MATCHES", 0)
            kinds.append(
                EngineKind(sport, engine.FIRST_ID, engine.DEFAULT_MATCHES, bench, demo, engine.make)
            )
        elif sample is not None:
            make = partial(_sample_engine, sport, sample)
            kinds.append(EngineKind(sport, sample["match_id"], 0, 0, 0, make))
    return {kind.sport: kind for kind in sorted(kinds, key=lambda kind: kind.first_id)}
