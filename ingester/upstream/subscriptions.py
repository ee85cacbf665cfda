"""Which matches are followed, on which upstream connection, in which state (pure).

:class:`SubscriptionBook` is a small state machine: events go in (a match is followed or
dropped, a connection comes up or goes down, a frame or an error arrives, time passes) and
actions come out (:class:`Subscribe`, :class:`Unsubscribe`, :class:`OpenConnection`,
:class:`CloseConnection`, :class:`ReplaceConnection`, :class:`Retire`). The asyncio layer
carries the actions out.

A match goes ``pending`` (subscribe sent or to be sent) → ``active`` (snapshot seen) →
``refused`` (error frame; retried after ``refused_retry`` seconds), or is dropped. A subscribe
left unanswered (no snapshot, no error) for ``subscribe_timeout`` seconds after it went out
(:meth:`SubscriptionBook.subscribe_sent`) is sent again; left
unanswered once more, its connection is replaced. Matches are packed onto connections, each
holding at most ``per_connection``; beyond ``max_matches`` a match waits (``waiting``) until
another one is dropped.

A frame belongs to a match only when it comes from the connection that holds the match now
(:meth:`SubscriptionBook.holds`): a connection still open for other matches may deliver frames
of a match that has moved on, and those must not be produced among the new connection's.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import Any

__all__ = [
    "OVERSIZED_TRIES",
    "Action",
    "CloseConnection",
    "FrameVerdict",
    "Match",
    "MatchState",
    "OpenConnection",
    "ReplaceConnection",
    "Retire",
    "Subscribe",
    "SubscriptionBook",
    "Unsubscribe",
]

TERMINAL_STATUSES = frozenset({"finished", "abandoned", "postponed"})
#: Messages over the size limit in a row (no snapshot read between them) after which a
#: match is no longer subscribed: its snapshot would close the connection on every attempt.
OVERSIZED_TRIES = 3


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


@dataclass(frozen=True, slots=True)
class Subscribe:
    """Send ``subscribe`` for ``match_id`` on connection ``connection``; ``resend`` when the
    previous one went unanswered for ``subscribe_timeout``."""

    connection: int
    match_id: int
    resend: bool = False


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
class ReplaceConnection:
    """Drop connection ``connection`` and connect again: ``unanswered`` of its subscribes got
    no answer, even sent twice."""

    connection: int
    unanswered: int


@dataclass(frozen=True, slots=True)
class Retire:
    """``match_id`` has been over for the grace period: ask the control plane to drop it."""

    match_id: int


Action = Subscribe | Unsubscribe | OpenConnection | CloseConnection | ReplaceConnection | Retire


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
    # Subscribed on a connection that was already up, which may still deliver frames of an
    # earlier subscription of the match: none is the match's until the new snapshot.
    fresh: bool = False
    answer_due: float | None = None  # set when its subscribe goes out (subscribe_sent)
    resent: bool = False
    oversized: int = 0  # messages over the size limit since its last snapshot

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
        subscribe_timeout: float = 30.0,
    ) -> None:
        self.per_connection = per_connection
        self.max_matches = max_matches
        self.refused_retry = refused_retry
        self.retire_after = retire_after
        self.subscribe_timeout = subscribe_timeout
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
            match.fresh = False  # a new connection carries no earlier subscription
            if match.state is not MatchState.REFUSED:
                actions.append(self._subscribe(match, connection))
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

    def holds(self, match_id: int, connection: int, snapshot: bool) -> bool:
        """True when a data frame of ``match_id`` read from ``connection`` is the match's:
        it is followed, on that connection, and (after a subscribe on a connection already
        up) its new snapshot has come or this is it. Any other frame is a stray."""
        match = self._matches.get(match_id)
        return (
            match is not None and match.connection == connection and (snapshot or not match.fresh)
        )

    def on_data(
        self,
        match_id: int,
        connection: int,
        snapshot: bool,
        seq: int | None,
        sport: str,
        status: str | None,
        now: float,
    ) -> FrameVerdict:
        """Record a data frame :meth:`holds` accepted; a :attr:`FrameVerdict.GAP` asks for
        :meth:`resubscribe`."""
        match = self._matches[match_id]
        match.last_frame_at = now
        match.sport = sport
        self._track_status(match, status, now)
        verdict = FrameVerdict.IN_ORDER
        if snapshot:
            match.state = MatchState.ACTIVE
            match.refused_code = match.refused_reason = None
            match.fresh = False
            match.answer_due = None
            match.resent = False
            match.oversized = 0
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
        return [self._subscribe(match, match.connection)]

    def on_error(
        self, match_id: int, connection: int, code: str | None, reason: str, now: float
    ) -> bool:
        """Mark ``match_id`` refused by the upstream; ``False`` when the refusal came from a
        connection that does not hold it (or it is not followed)."""
        match = self._matches.get(match_id)
        if match is None or match.connection != connection:
            return False
        match.state = MatchState.REFUSED
        match.answer_due = None
        match.refused_code = code or "unknown"
        match.refused_reason = reason
        match.retry_at = now + self.refused_retry
        return True

    def on_oversized(self, match_id: int, connection: int) -> bool:
        """A message of ``match_id`` over the size limit ended ``connection``. The
        :data:`OVERSIZED_TRIES`-th in a row refuses the match for good (code
        ``message_too_big``, not retried by itself: a ``remove`` then ``add`` tries again);
        ``True`` then."""
        match = self._matches.get(match_id)
        if match is None or match.connection != connection:
            return False
        match.oversized += 1
        if match.oversized < OVERSIZED_TRIES:
            return False
        match.state = MatchState.REFUSED
        match.refused_code = "message_too_big"
        match.refused_reason = f"{match.oversized} messages over the size limit in a row"
        match.retry_at = match.answer_due = None
        return True

    def subscribe_sent(self, connection: int, match_id: int, now: float) -> None:
        """A subscribe for ``match_id`` went out on ``connection`` at ``now``: its answer is
        due ``subscribe_timeout`` seconds later (not before, however long it was queued)."""
        match = self._matches.get(match_id)
        if (
            match is not None
            and match.connection == connection
            and match.state is MatchState.PENDING
        ):
            match.answer_due = now + self.subscribe_timeout

    # -- time ----------------------------------------------------------------------------

    def tick(self, now: float) -> list[Action]:
        """Retry refused matches that are due, send unanswered subscribes again (or replace
        their connection) and retire matches over for long enough."""
        actions: list[Action] = []
        unanswered: dict[int, int] = {}  # connection → subscribes unanswered twice
        for match in self._matches.values():
            connection = match.connection
            if connection is not None and self._connections[connection].connected:
                if match.state is MatchState.PENDING:
                    self._chase(match, connection, now, actions, unanswered)
                elif (
                    match.state is MatchState.REFUSED
                    and match.retry_at is not None
                    and now >= match.retry_at
                ):
                    match.retry_at = None
                    actions.append(self._subscribe(match, connection))
            if (
                self.retire_after > 0
                and match.over_since is not None
                and not match.retire_requested
                and now - match.over_since >= self.retire_after
            ):
                match.retire_requested = True
                actions.append(Retire(match.match_id))
        actions.extend(ReplaceConnection(c, n) for c, n in sorted(unanswered.items()))
        return actions

    def _chase(
        self,
        match: Match,
        connection: int,
        now: float,
        actions: list[Action],
        unanswered: dict[int, int],
    ) -> None:
        """Act on a subscribe whose answer is overdue (none is before it is sent): send it
        again once, then ask for its connection to be replaced."""
        if match.answer_due is None or now < match.answer_due:
            return
        match.answer_due = now + self.subscribe_timeout  # if the replacement does not happen
        if match.resent:
            match.resent = False
            unanswered[connection] = unanswered.get(connection, 0) + 1
        else:
            match.resent = True
            match.answer_due = None  # due once sent again
            actions.append(Subscribe(connection, match.match_id, resend=True))

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
        match.fresh = conn.connected
        self._matches[match.match_id] = match
        if conn.connected:
            actions.append(self._subscribe(match, index))
        return actions

    def _subscribe(self, match: Match, connection: int) -> Subscribe:
        """A subscribe for ``match``, now pending an answer (a snapshot or an error)."""
        match.state = MatchState.PENDING
        match.answer_due = None
        match.resent = False
        return Subscribe(connection, match.match_id)

    def _track_status(self, match: Match, status: str | None, now: float) -> None:
        match.status = status
        if status in TERMINAL_STATUSES:
            if match.over_since is None:
                match.over_since = now
        else:
            match.over_since = None
            match.retire_requested = False
