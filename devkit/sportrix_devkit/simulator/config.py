"""The simulator's settings (:class:`SimulatorConfig`) and API keys (:class:`ApiKey`)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path

from sportrix_devkit.simulator.engines import engine_kinds

__all__ = [
    "DEMO_KEY",
    "MALFORMED_KINDS",
    "MAX_MATCHES",
    "ApiKey",
    "SimulatorConfig",
]

#: The most matches of the sport with the highest first id (the others stop short of the
#: next sport's first id).
MAX_MATCHES = 10_000
#: The key accepted (for every sport) when no key is configured.
DEMO_KEY = "demo-key"
#: The kinds of malformed frame the simulator can inject.
MALFORMED_KINDS = (
    "bad_json",
    "not_object",
    "no_op",
    "missing_field",
    "wrong_type",
    "unknown_sport",
    "unknown_op",
)


@dataclass(frozen=True)
class ApiKey:
    """An API key: the sports it has enabled (``None``: all), and whether it may connect."""

    key: str
    sports: frozenset[str] | None = None
    expired: bool = False
    scoped: bool = True  # has the live_scores_statistics scope

    @classmethod
    def parse(cls, spec: str, *, expired: bool = False, scoped: bool = True) -> ApiKey:
        """Parse ``KEY`` or ``KEY:sport,sport``; raises ``ValueError`` on an empty key."""
        key, _, sports = spec.partition(":")
        if not key:
            raise ValueError(f"empty API key in {spec!r}")
        enabled = frozenset(s.strip() for s in sports.split(",") if s.strip()) if sports else None
        return cls(key, enabled, expired, scoped)


@dataclass
class SimulatorConfig:
    """Everything ``sportrix-ingester simulate`` takes; the defaults are the CLI's."""

    host: str = "127.0.0.1"
    port: int = 8765  # 0 picks a free port
    keys: list[ApiKey] = field(default_factory=list)  # empty: only DEMO_KEY, every sport
    #: Matches per sport; a sport not named plays its engine's default count.
    matches: dict[str, int] = field(default_factory=dict)
    seed: int = 0
    speed: float = 1.0
    update_rate: float | None = None  # frames/s per match; None: natural pace times speed
    ping_interval: float = 30.0
    max_subscriptions: int = 500
    history: int = 1000
    drop_every: float | None = None
    drop_mode: str = "close"  # close | abrupt
    refuse_for: float = 0.0
    malformed_fraction: float = 0.0
    malformed_kinds: tuple[str, ...] = MALFORMED_KINDS
    stall_after: float | None = None
    stall_for: float = 0.0
    tls_cert: Path | None = None  # PEM certificate chain: serve wss:// and https://
    tls_key: Path | None = None  # its private key (None: in tls_cert)
    tls_client_ca: Path | None = None  # require client certificates signed by this CA

    def __post_init__(self) -> None:
        self.match_counts()  # raises ValueError for a bad count
        if self.speed <= 0 or (self.update_rate is not None and self.update_rate <= 0):
            raise ValueError("speed and update rate must be positive")
        if self.ping_interval <= 0 or self.max_subscriptions < 1 or self.history < 1:
            raise ValueError("ping interval, max subscriptions and history must be positive")
        if self.drop_mode not in ("close", "abrupt"):
            raise ValueError("drop mode must be close or abrupt")
        if not 0.0 <= self.malformed_fraction <= 1.0:
            raise ValueError("malformed fraction must be between 0 and 1")
        unknown = set(self.malformed_kinds) - set(MALFORMED_KINDS)
        if unknown or not self.malformed_kinds:
            raise ValueError(f"malformed kinds must be among {', '.join(MALFORMED_KINDS)}")
        if self.tls_cert is None and (self.tls_key or self.tls_client_ca):
            raise ValueError("--tls-key and --tls-client-ca need --tls-cert")

    def match_counts(self) -> dict[str, int]:
        """Matches per sport, for every sport the simulator can play (see
        :func:`sportrix_devkit.simulator.engines.engine_kinds`); ``ValueError`` for an unknown
        sport, a negative count, or so many matches that a sport's ids reach the next sport's."""
        kinds = list(engine_kinds().values())
        unknown = sorted(set(self.matches) - {kind.sport for kind in kinds})
        if unknown:
            known = ", ".join(kind.sport for kind in kinds)
            raise ValueError(f"unknown sport {unknown[0]!r} (the simulator plays: {known})")
        counts = {kind.sport: self.matches.get(kind.sport, kind.default_matches) for kind in kinds}
        if any(count < 0 for count in counts.values()):
            raise ValueError("match counts must not be negative")
        limits = [after.first_id - kind.first_id for kind, after in itertools.pairwise(kinds)]
        for kind, limit in zip(kinds, [*limits, MAX_MATCHES], strict=True):
            if counts[kind.sport] > limit:
                raise ValueError(f"at most {limit} {kind.sport} matches")
        return counts
