"""Protocol-shaped sample ``data`` for tests and the hot-path benchmark.

:func:`protocol_example` returns a sport's ``SAMPLE`` (the examples of
``sportrix-protocol.md`` verbatim for the built-in sports); :func:`sample_frames` derives
whole frames from every registered sport's sample, the sports taking turns, with a sport's
``HISTORY`` list growing as it would over a match.
"""

from __future__ import annotations

import copy
import functools
import random
from typing import Any

import orjson

from ingester.convert.registry import Converters, load_converters

__all__ = ["protocol_example", "sample_frames"]

#: The registry of the default schemas directory, loaded once.
_default_registry = functools.cache(load_converters)


def protocol_example(sport: str, registry: Converters | None = None) -> dict[str, Any]:
    """A fresh copy (safe to mutate) of the sample ``data`` of ``sport``; ``KeyError`` when
    the sport is not registered or has no ``SAMPLE``."""
    entry = (registry or _default_registry()).sport(sport)
    if entry is None or entry.sample is None:
        raise KeyError(sport)
    return copy.deepcopy(dict(entry.sample))


def sample_frames(
    count: int, *, max_events: int = 20, seed: int = 0, registry: Converters | None = None
) -> list[bytes]:
    """``count`` update frames as raw JSON, every sport with a sample in turn.

    A sport's ``HISTORY`` list carries between 0 and ``max_events`` entries (uniformly, copies
    of its sample's first), like matches at random points of their course.
    """
    registry = registry or _default_registry()
    # In the order of their samples' match ids (soccer, then cricket), as the simulator's.
    sampled = [entry for entry in registry.entries() if entry.sample is not None]
    sports = sorted(sampled, key=lambda entry: (entry.sample or {})["match_id"])
    rng = random.Random(seed)
    frames = []
    for index in range(count):
        entry = sports[index % len(sports)]
        data = copy.deepcopy(dict(entry.sample or {}))
        data["match_id"] += index
        data["seq"] = index + 1
        if entry.history is not None and data[entry.history]:
            template = data[entry.history][0]
            data[entry.history] = [
                {**template, "id": event_id} if "id" in template else dict(template)
                for event_id in range(rng.randint(0, max_events))
            ]
        frames.append(orjson.dumps({"op": "update", "match_id": data["match_id"], "data": data}))
    return frames
