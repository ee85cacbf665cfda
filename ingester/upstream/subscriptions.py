"""Which matches are followed, on which upstream connection, in which state (pure).

:class:`SubscriptionBook` is a small state machine: events go in (a match is followed or
dropped, a connection comes up or goes down, a frame or an error arrives, time passes) and
actions come out (:class:`Subscribe`, :class:`Unsubscribe`, :class:`OpenConnection`,
:class:`CloseConnection`, :class:`Retire`). The asyncio layer carries the actions out.

A match goes ``pending`` (subscribe sent or to be sent) → ``active`` (snapshot seen) →
``refused`` (error frame; retried after ``refused_retry`` seconds), or is dropped. Matches are
packed onto connections, each holding at most ``per_connection``; beyond ``max_matches`` a
match waits (``waiting``) until another one is dropped.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import Any

__all__ = [
    "Action",
    "CloseConnection",
    "FrameVerdict",
    "Match",
    "MatchState",
    "OpenConnection",
    "Retire",
    "Subscribe",
    "SubscriptionBook",
    "Unsubscribe",
]

TERMINAL_STATUSES = frozenset({"finished", "abandoned", "postponed"})


class MatchState(StrEnum):
    """Subscription state of one followed match."""

    PENDING = "pending"
    ACTIVE = "active"
    REFUSED = "refused"
    WAITING = "waiting"


class FrameVerdict(Enum):
    """How a data frame relates to what was produced before for its match."""

    IN_ORDER = "in_order"
    GAP = "gap"
    OUT_OF_ORDER = "out_of_order"
    NOT_FOLLOWED = "not_followed"


@dataclass(frozen=True, slots=True)
class Subscribe:
    """Send ``subscribe`` for ``match_id`` on connection ``connection``."""

    connection: int
    match_id: int


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    """Send ``unsubscribe`` for ``match_id`` on connection ``connection``."""

    connection: int
    match_id: int


@dataclass(frozen=True, slots=True)
class OpenConnection:
    """Start upstream connection ``connection`` (it now carries matches)."""

    connection: int


@dataclass(frozen=True, slots=True)
class CloseConnection:
    """Stop upstream connection ``connection`` (it carries no match any more)."""

    connection: int


@dataclass(frozen=True, slots=True)
class Retire:
    """``match_id`` has been over for the grace period: ask the control plane to drop it."""

    match_id: int


Action = Subscribe | Unsubscribe | OpenConnection | CloseConnection | Retire


@dataclass(slots=True)
class Match:
    """What the book knows of one followed match."""

    match_id: int
    state: MatchState = MatchState.PENDING
    connection: int | None = None
    sport: str | None = None
    status: str | None = None
    last_seq: int | None = None
    last_frame_at: float | None = None
    refused_code: str | None = None
    refused_reason: str | None = None
    retry_at: float | None = None
    over_since: float | None = None
    retire_requested: bool = False

    def as_status(self, now: float) -> dict[str, Any]:
        """JSON-ready view for ``/status``."""
        return {
            "match_id": self.match_id,
            "state": self.state.value,
            "connection": self.connection,
            "sport": self.sport,
            "status": self.status,
            "last_seq": self.last_seq,
            "last_frame_age_seconds": (
                round(now - self.last_frame_at, 3) if self.last_frame_at is not None else None
            ),
            "refused": (
                {"code": self.refused_code, "reason": self.refused_reason}
                if self.state is MatchState.REFUSED
                else None
            ),
        }


@dataclass(slots=True)
class _Connection:
    matches: set[int] = field(default_factory=set)
    connected: bool = False


class SubscriptionBook:
    """The followed matches and their upstream connections; see the module docstring."""

    def __init__(
        self,
        per_connection: int,
        max_matches: int,
        refused_retry: float,
        retire_after: float = 0.0,
    ) -> None:
        self.per_connection = per_connection
        self.max_matches = max_matches
        self.refused_retry = refused_retry
        self.retire_after = retire_after
        self._matches: dict[int, Match] = {}
        self._waiting: dict[int, Match] = {}
        self._connections: dict[int, _Connection] = {}

    # -- views ---------------------------------------------------------------------------

    def __contains__(self, match_id: int) -> bool:
        return match_id in self._matches or match_id in self._waiting

    def __len__(self) -> int:
        return len(self._matches) + len(self._waiting)

    def get(self, match_id: int) -> Match | None:
        """The followed (or waiting) match, or ``None``."""
        return self._matches.get(match_id) or self._waiting.get(match_id)

    def matches(self) -> Iterator[Match]:
        """Every followed match, then every waiting one."""
        yield from self._matches.values()
        yield from self._waiting.values()

    def connection_ids(self) -> list[int]:
        """The connections that carry at least one match."""
        return sorted(self._connections)

    def connection_matches(self, connection: int) -> list[int]:
        """The matches assigned to ``connection``."""
        conn = self._connections.get(connection)
        return sorted(conn.matches) if conn else []

    def counts(self) -> dict[str, int]:
        """Number of matches per state (all states present)."""
        counts = {state.value: 0 for state in MatchState}
        for match in self.matches():
            counts[match.state.value] += 1
        return counts

    def oldest_active_frame(self) -> float | None:
        """The earliest ``last_frame_at`` among active matches."""
        times = [
            m.last_frame_at
            for m in self._matches.values()
            if m.state is MatchState.ACTIVE and m.last_frame_at is not None
        ]
        return min(times, default=None)

    # -- control plane -------------------------------------------------------------------

    def follow(self, match_id: int) -> list[Action]:
        """Start following ``match_id``; a no-op when it is already followed."""
        if match_id in self:
            return []
        if len(self._matches) >= self.max_matches:
            self._waiting[match_id] = Match(match_id, state=MatchState.WAITING)
            return []
        return self._place(Match(match_id))

    def unfollow(self, match_id: int) -> list[Action]:
        """Stop following ``match_id``; promotes the oldest waiting match into its place."""
        if self._waiting.pop(match_id, None) is not None:
            return []
        match = self._matches.pop(match_id, None)
        if match is None:
            return []
        actions: list[Action] = []
        if match.connection is not None:
            conn = self._connections[match.connection]
            conn.matches.discard(match_id)
            if conn.connected and match.state is not MatchState.REFUSED:
                actions.append(Unsubscribe(match.connection, match_id))
            if not conn.matches:
                del self._connections[match.connection]
                actions.append(CloseConnection(match.connection))
        if self._waiting:
            promoted = next(iter(self._waiting))
            waiting = self._waiting.pop(promoted)
            waiting.state = MatchState.PENDING
            actions.extend(self._place(waiting))
        return actions

    def is_waiting(self, match_id: int) -> bool:
        """True when ``match_id`` is held back by ``max_matches``."""
        return match_id in self._waiting

    # -- connections ---------------------------------------------------------------------

    def connected(self, connection: int) -> list[Action]:
        """Connection ``connection`` is up: subscribe everything it carries."""
        conn = self._connections.get(connection)
        if conn is None:
            return []
        conn.connected = True
        actions: list[Action] = []
        for match_id in sorted(conn.matches):
            match = self._matches[match_id]
            if match.state is MatchState.REFUSED:
                continue
            match.state = MatchState.PENDING
            actions.append(Subscribe(connection, match_id))
        return actions

    def disconnected(self, connection: int) -> None:
        """Connection ``connection`` is down: its matches wait for the re-subscribe."""
        conn = self._connections.get(connection)
        if conn is None:
            return
        conn.connected = False
        for match_id in conn.matches:
            match = self._matches[match_id]
            if match.state is MatchState.ACTIVE:
                match.state = MatchState.PENDING

    # -- frames --------------------------------------------------------------------------

    def on_data(
        self,
        match_id: int,
        snapshot: bool,
        seq: int | None,
        sport: str,
        status: str | None,
        now: float,
    ) -> FrameVerdict:
        """Record a data frame; a :attr:`FrameVerdict.GAP` asks for :meth:`resubscribe`."""
        match = self._matches.get(match_id)
        if match is None:
            return FrameVerdict.NOT_FOLLOWED
        match.last_frame_at = now
        match.sport = sport
        self._track_status(match, status, now)
        verdict = FrameVerdict.IN_ORDER
        if snapshot:
            match.state = MatchState.ACTIVE
            match.refused_code = match.refused_reason = None
        elif seq is not None and match.last_seq is not None:
            if seq <= match.last_seq:
                return FrameVerdict.OUT_OF_ORDER
            if seq > match.last_seq + 1 and match.state is MatchState.ACTIVE:
                verdict = FrameVerdict.GAP
        if seq is not None:
            match.last_seq = seq
        return verdict

    def resubscribe(self, match_id: int) -> list[Action]:
        """Ask again for a snapshot of ``match_id`` (after a ``seq`` gap)."""
        match = self._matches.get(match_id)
        if match is None or match.connection is None:
            return []
        if not self._connections[match.connection].connected:
            return []
        match.state = MatchState.PENDING
        return [Subscribe(match.connection, match_id)]

    def on_error(self, match_id: int, code: str | None, reason: str, now: float) -> bool:
        """Mark ``match_id`` refused by the upstream; ``False`` when it is not followed."""
        match = self._matches.get(match_id)
        if match is None:
            return False
        match.state = MatchState.REFUSED
        match.refused_code = code or "unknown"
        match.refused_reason = reason
        match.retry_at = now + self.refused_retry
        return True

    # -- time ----------------------------------------------------------------------------

    def tick(self, now: float) -> list[Action]:
        """Retry refused matches that are due and retire matches over for long enough."""
        actions: list[Action] = []
        for match in self._matches.values():
            if (
                match.state is MatchState.REFUSED
                and match.retry_at is not None
                and now >= match.retry_at
                and match.connection is not None
                and self._connections[match.connection].connected
            ):
                match.state = MatchState.PENDING
                match.retry_at = None
                actions.append(Subscribe(match.connection, match.match_id))
            if (
                self.retire_after > 0
                and match.over_since is not None
                and not match.retire_requested
                and now - match.over_since >= self.retire_after
            ):
                match.retire_requested = True
                actions.append(Retire(match.match_id))
        return actions

    # -- internals -----------------------------------------------------------------------

    def _place(self, match: Match) -> list[Action]:
        """Put ``match`` on the lowest-numbered connection with room."""
        index = next(
            (
                i
                for i in sorted(self._connections)
                if len(self._connections[i].matches) < self.per_connection
            ),
            None,
        )
        actions: list[Action] = []
        if index is None:
            index = next(i for i in itertools.count() if i not in self._connections)
            self._connections[index] = _Connection()
            actions.append(OpenConnection(index))
        conn = self._connections[index]
        conn.matches.add(match.match_id)
        match.connection = index
        match.state = MatchState.PENDING
        self._matches[match.match_id] = match
        if conn.connected:
            actions.append(Subscribe(index, match.match_id))
        return actions

    def _track_status(self, match: Match, status: str | None, now: float) -> None:
        match.status = status
        if status in TERMINAL_STATUSES:
            if match.over_since is None:
                match.over_since = now
        else:
            match.over_since = None
            match.retire_requested = False
