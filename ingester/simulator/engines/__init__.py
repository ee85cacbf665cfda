"""Pure match engines: state + a ``random.Random`` + time in, next state out.

:func:`engine_kinds` gives an engine for every sport of the registry
(:mod:`ingester.convert.registry`): the module of this package named after the sport when
there is one (it defines ``make``, ``FIRST_ID`` and ``DEFAULT_MATCHES``), else a
:class:`SampleEngine` playing out the sport's ``SAMPLE``.
"""

from __future__ import annotations

import importlib
import importlib.util
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from ingester.convert.registry import Converters, Sport, load_converters
from ingester.simulator.engines.base import MatchEngine, MatchInfo, iso_millis, iso_seconds
from ingester.simulator.engines.sample import SampleEngine

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
    #: ``make(seed, match_id, now)``: the engine of one match of the catalogue of ``seed``.
    make: Callable[[int, int, float], MatchEngine]


def _sample_engine(entry: Sport, seed: int, match_id: int, now: float) -> MatchEngine:
    sample: Mapping[str, Any] = entry.sample or {}
    info = MatchInfo(match_id, sample["competition"], sample["home"], sample["away"], now)
    return SampleEngine(entry.name, sample, info, random.Random(f"{seed}:{match_id}"))


def engine_kinds(registry: Converters | None = None) -> dict[str, EngineKind]:
    """The engine of every sport that can be played, by sport, lowest first id first."""
    kinds = []
    for entry in (registry or load_converters()).entries():
        name = f"{__name__}.{entry.name}"
        module = importlib.import_module(name) if importlib.util.find_spec(name) else None
        if module is not None and hasattr(module, "make"):
            kinds.append(
                EngineKind(entry.name, module.FIRST_ID, module.DEFAULT_MATCHES, module.make)
            )
        elif entry.sample is not None:
            make = partial(_sample_engine, entry)
            kinds.append(EngineKind(entry.name, entry.sample["match_id"], 0, make))
    return {kind.sport: kind for kind in sorted(kinds, key=lambda kind: kind.first_id)}
