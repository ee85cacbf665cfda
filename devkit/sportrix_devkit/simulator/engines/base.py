"""What every match engine shares: the common ``data`` fields, ``seq`` and ``updated_at``.

An engine is a pure state machine: :meth:`MatchEngine.step` applies exactly one state change
(``seq`` +1, ``updated_at`` set from the ``now`` it is given) and returns how many simulated
seconds pass before the next natural change, or ``None`` once the match is over. Engines never
read the clock and never sleep; the caller decides when to step them.
"""

from __future__ import annotations

import random
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, TypeVar

__all__ = ["MatchEngine", "MatchInfo", "draw_match", "iso_millis", "iso_seconds"]

T = TypeVar("T")

_last_stamp: tuple[float, str] = (-1.0, "")


def iso_millis(epoch: float) -> str:
    """``epoch`` as ISO-8601 UTC with milliseconds, e.g. ``2026-11-28T14:00:00.120Z``."""
    global _last_stamp  # noqa: PLW0603 - a one-entry cache: a batch of steps shares its time
    cached_epoch, text = _last_stamp
    if epoch != cached_epoch:
        whole, millis = divmod(round(epoch * 1000), 1000)
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
        text = f"{prefix}.{millis:03d}Z"
        _last_stamp = (epoch, text)
    return text


def iso_seconds(epoch: float) -> str:
    """``epoch`` as ISO-8601 UTC to the second, e.g. ``2026-11-28T15:00:00Z``."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(epoch)))


class MatchInfo:
    """The fixed facts of a match: id, competition, teams and scheduled start."""

    __slots__ = ("away", "competition", "home", "match_id", "start_time")

    def __init__(
        self, match_id: int, competition: str, home: str, away: str, start_time: float
    ) -> None:
        self.match_id = match_id
        self.competition = competition
        self.home = home
        self.away = away
        self.start_time = start_time


def draw_match(
    seed: int, match_id: int, now: float, competitions: Sequence[tuple[str, T, Sequence[str]]]
) -> tuple[MatchInfo, random.Random, T]:
    """Match ``match_id`` of the catalogue of ``seed``: its facts (a competition of
    ``competitions``, ``(name, detail, teams)``, and two of its teams), the match's own random
    generator, and the competition's detail (a format, whether it is a knockout...)."""
    rng = random.Random(f"{seed}:{match_id}")
    competition, detail, teams = rng.choice(competitions)
    home, away = rng.sample(list(teams), 2)
    return MatchInfo(match_id, competition, home, away, now), rng, detail


class MatchEngine(ABC):
    """One match's state and its own random generator; subclasses play one sport.

    ``data`` is the protocol's ``data`` object, mutated in place by each step: serialise it
    (``orjson.dumps``) before the next step if you need to keep that state.
    """

    sport: str
    #: A list field of ``data`` that only ever grows at its end (serialised incrementally).
    append_only: str | None = None

    def __init__(self, info: MatchInfo, rng: random.Random) -> None:
        self.info = info
        self.rng = rng
        #: Simulated seconds from the latest change to the next one (``None``: over).
        self.next_delay: float | None = 0.0
        self.data: dict[str, Any] = {
            "match_id": info.match_id,
            "sport": self.sport,
            "competition": info.competition,
            "home": info.home,
            "away": info.away,
            "status": "scheduled",
            "start_time": iso_seconds(info.start_time),
            "seq": 0,
            "updated_at": iso_millis(info.start_time),
        }

    @property
    def match_id(self) -> int:
        """The match id."""
        return self.info.match_id

    @property
    def seq(self) -> int:
        """The ``seq`` of the current state (0 before :meth:`publish_initial`)."""
        seq: int = self.data["seq"]
        return seq

    @property
    def finished(self) -> bool:
        """Whether the match is over: :meth:`step` makes no more changes."""
        return bool(self.data["status"] == "finished")

    def publish_initial(self, now: float) -> None:
        """Stamp the initial (scheduled) state as ``seq`` 1."""
        self._stamp(now)

    def step(self, now: float) -> float | None:
        """Apply the next change; returns simulated seconds to the next one, ``None`` at the end.

        Does nothing and returns ``None`` when the match is already over.
        """
        if self.finished:
            return None
        delay = self._advance()
        self._stamp(now)
        self.next_delay = None if self.finished else delay
        return self.next_delay

    def fast_forward(self, progress: float, now: float, changes: int | None = None) -> float:
        """Play changes until :meth:`progress` reaches ``progress`` (each bumps ``seq``).

        Stops after ``changes`` changes when given. Only the final state is stamped with
        ``now``. Returns the simulated seconds played.
        """
        data = self.data
        played = 0.0
        last_seq = data["seq"] + changes if changes is not None else None
        while not self.finished and self.progress() < progress and data["seq"] != last_seq:
            self.next_delay = self._advance()
            data["seq"] += 1
            played += self.next_delay
        data["updated_at"] = iso_millis(now)
        if self.finished:
            self.next_delay = None
        return played

    def finish(self, now: float) -> bool:
        """End the match now (status ``finished``); ``False`` when it was already over."""
        if self.finished:
            return False
        self._end_now()
        self._stamp(now)
        self.next_delay = None
        return True

    def _stamp(self, now: float) -> None:
        data = self.data
        data["seq"] += 1
        data["updated_at"] = iso_millis(now)

    @abstractmethod
    def _advance(self) -> float:
        """Make one change to ``data``; return simulated seconds until the next change."""

    @abstractmethod
    def _end_now(self) -> None:
        """Bring ``data`` to a finished state at once."""

    @abstractmethod
    def progress(self) -> float:
        """How far through the match play is, 0.0 (not started) to 1.0 (over), roughly."""
