"""The engine of a sport without one of its own: its module's ``SAMPLE`` data, played out.

Every registered sport with a ``SAMPLE`` can be served this way (a plugin sport, for one):
the sample's sport fields stay as they are, the common fields are the match's own, and the
match goes live, changes once a simulated minute (``seq`` and ``updated_at``) and ends after
:data:`CHANGES` changes.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Mapping
from typing import Any

from sportrix_devkit.simulator.engines.base import MatchEngine, MatchInfo

__all__ = ["CHANGES", "SampleEngine"]

#: Changes from kick-off to the end of a match.
CHANGES = 90
_CHANGE_SECONDS = 60.0


class SampleEngine(MatchEngine):
    """One match of ``sport`` whose state is ``sample`` (its ``data``) with the common fields
    of ``info``."""

    def __init__(
        self, sport: str, sample: Mapping[str, Any], info: MatchInfo, rng: random.Random
    ) -> None:
        self.sport = sport
        super().__init__(info, rng)
        for key, value in sample.items():
            self.data.setdefault(key, copy.deepcopy(value))
        self._changes = 0

    def _advance(self) -> float:
        self._changes += 1
        self.data["status"] = "finished" if self._changes >= CHANGES else "live"
        return _CHANGE_SECONDS

    def _end_now(self) -> None:
        self.data["status"] = "finished"

    def progress(self) -> float:
        return self._changes / CHANGES
