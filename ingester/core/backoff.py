"""Exponential backoff with full jitter (pure; time and randomness are passed in)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

__all__ = ["Backoff"]


@dataclass
class Backoff:
    """Delays for reconnect attempts: ``uniform(0, min(cap, base * 2**attempt))``.

    Call :meth:`connected` when a connection is up and :meth:`next_delay` after each
    failure. A connection that stayed healthy for ``reset_after`` seconds resets the
    attempt counter, so a flapping upstream keeps backing off while a rare drop does not.
    """

    base: float
    cap: float
    reset_after: float
    rng: random.Random = field(default_factory=random.Random)
    attempt: int = 0
    _connected_at: float | None = None

    def connected(self, now: float) -> None:
        """Record that a connection came up at ``now``."""
        self._connected_at = now

    def next_delay(self, now: float, floor: float = 0.0) -> float:
        """The delay before the next attempt: ``floor`` (e.g. after a 401) plus jitter."""
        if self._connected_at is not None and now - self._connected_at >= self.reset_after:
            self.attempt = 0
        self._connected_at = None
        ceiling = min(self.cap, self.base * (2.0 ** min(self.attempt, 62)))
        self.attempt += 1
        return floor + self.rng.uniform(0.0, ceiling)
