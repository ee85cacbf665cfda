"""Pure match engines, one per sport: state + a ``random.Random`` + time in, next state out."""

from sportrix_devkit.simulator.engines.base import MatchEngine, MatchInfo, iso_millis, iso_seconds
from sportrix_devkit.simulator.engines.cricket import CricketEngine
from sportrix_devkit.simulator.engines.soccer import SoccerEngine

__all__ = [
    "CricketEngine",
    "MatchEngine",
    "MatchInfo",
    "SoccerEngine",
    "iso_millis",
    "iso_seconds",
]
