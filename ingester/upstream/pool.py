"""The set of upstream sessions, driven by the :class:`SubscriptionBook`'s actions."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from ingester.upstream.session import ConnectionState, SessionConfig, UpstreamSession
from ingester.upstream.subscriptions import (
    Action,
    CloseConnection,
    OpenConnection,
    ReplaceConnection,
    Retire,
    Subscribe,
    SubscriptionBook,
    Unsubscribe,
)

__all__ = ["UpstreamPool"]

log = logging.getLogger(__name__)


class UpstreamPool:
    """Opens, closes and talks through upstream sessions as the book asks.

    Every session is built from ``sessions``; ``on_retire`` receives the matches the book
    wants retired (the control plane writes their ``remove`` command).
    """

    def __init__(
        self,
        book: SubscriptionBook,
        sessions: SessionConfig,
        on_retire: Callable[[int], None],
    ) -> None:
        self._book = book
        self._config = sessions
        self._metrics = sessions.metrics
        self._on_retire = on_retire
        self._sessions: dict[int, UpstreamSession] = {}
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._closing: set[asyncio.Task[None]] = set()

    def execute(self, actions: list[Action]) -> None:
        """Carry out the book's actions."""
        resent: dict[int, list[int]] = {}
        for action in actions:
            if isinstance(action, Subscribe):
                if action.resend:
                    resent.setdefault(action.connection, []).append(action.match_id)
                self._send(action.connection, "subscribe", action.match_id)
            elif isinstance(action, Unsubscribe):
                self._send(action.connection, "unsubscribe", action.match_id)
            elif isinstance(action, OpenConnection):
                self._open(action.connection)
            elif isinstance(action, CloseConnection):
                self._close(action.connection)
            elif isinstance(action, ReplaceConnection):
                self._replace(action)
            elif isinstance(action, Retire):
                self._on_retire(action.match_id)
        for connection, matches in resent.items():
            self._metrics.unanswered_subscribes.inc(len(matches))
            log.warning(
                "connection %d: %d subscribe(s) unanswered for %.0fs (match %s); sending again",
                connection,
                len(matches),
                self._book.subscribe_timeout,
                ", ".join(map(str, matches[:10])) + (", ..." if len(matches) > 10 else ""),
            )

    def _replace(self, action: ReplaceConnection) -> None:
        """Replace a connection whose subscribes went unanswered twice, unless reading is
        paused (the answers may be waiting unread; the book asks again later)."""
        self._metrics.unanswered_subscribes.inc(action.unanswered)
        session = self._sessions.get(action.connection)
        if session is not None and not self._config.sink.full:
            session.replace(f"{action.unanswered} subscribe(s) unanswered, even sent again")

    def _send(self, connection: int, verb: str, match_id: int) -> None:
        session = self._sessions.get(connection)
        if session is not None:
            session.send_control(verb, match_id)

    def _open(self, index: int) -> None:
        session = UpstreamSession(index, self._config, self._book, self.execute)
        self._sessions[index] = session
        self._tasks[index] = asyncio.create_task(session.run(), name=f"upstream-{index}")
        log.info("connection %d: opened", index)

    def _close(self, index: int) -> None:
        """Close the session cleanly (it ends by itself), or cancel it when it is not connected."""
        session = self._sessions.pop(index, None)
        task = self._tasks.pop(index, None)
        if session is None or task is None:
            return
        if session.close_cleanly():
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
        else:
            task.cancel()
            log.info("connection %d: closed (no match left on it)", index)

    async def stop(self) -> None:
        """Cancel every session, closing ones included, and wait for them to end."""
        tasks = [*self._tasks.values(), *self._closing]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        self._sessions.clear()

    def states(self) -> dict[str, int]:
        """Number of sessions per state (all states present)."""
        counts = {state.value: 0 for state in ConnectionState}
        for session in self._sessions.values():
            counts[session.state.value] += 1
        return counts

    @property
    def all_connected(self) -> bool:
        """True when every session is connected (vacuously with none)."""
        return all(s.state is ConnectionState.CONNECTED for s in self._sessions.values())

    @property
    def auth_rejected(self) -> bool:
        """True when the upstream rejected the key on the last attempt of any session."""
        return any(s.auth_rejected for s in self._sessions.values())

    @property
    def last_failure(self) -> str | None:
        """Why a session that is not connected failed last (the lowest-numbered one)."""
        for index in sorted(self._sessions):
            failure = self._sessions[index].last_failure
            if failure is not None and self._sessions[index].state is not ConnectionState.CONNECTED:
                return failure
        return None

    def describe(self) -> list[dict[str, Any]]:
        """JSON-ready view of the sessions for ``/status``."""
        return [self._sessions[i].describe() for i in sorted(self._sessions)]

    def describe_matches(self) -> list[dict[str, Any]]:
        """JSON-ready view of the followed matches for ``/status``, by id."""
        now = time.monotonic()
        return [m.as_status(now) for m in sorted(self._book.matches(), key=lambda m: m.match_id)]

    def problems(self) -> list[str]:
        """What keeps the upstream side from being ready (empty when it is)."""
        if self.auth_rejected:
            return ["upstream rejected the API key"]
        if len(self._book) and not self.all_connected:
            states = self.states()
            failure = self.last_failure
            return [
                f"upstream not connected ({states['connected']} of {sum(states.values())} "
                f"connections up{f'; last failure: {failure}' if failure else ''})"
            ]
        return []

    def publish_gauges(self) -> None:
        """Bring the subscription and connection gauges and the last frame's age up to date."""
        metrics = self._metrics
        for state, count in self._book.counts().items():
            if state != "waiting":
                metrics.subscriptions.labels(state=state).set(count)
        for state, count in self.states().items():
            metrics.upstream_connections.labels(state=state).set(count)
        oldest = self._book.oldest_active_frame()
        metrics.last_frame_age.set(0.0 if oldest is None else time.monotonic() - oldest)
