"""The simulator's sans-I/O core: matches, subscriptions, frames to send, statistics.

:class:`Hub` does no I/O and reads no clock. The asyncio adapter (:mod:`.server`) feeds it
client messages (:meth:`Hub.receive`) and the time (:meth:`Hub.run_due`), then writes each
:class:`Session`'s ``outbox`` to its socket and reports what it wrote
(:meth:`Hub.count_sent`). Frames are serialised once per state change and shared by every
subscriber.
"""

from __future__ import annotations

import heapq
import math
import random
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

import orjson

from sportrix_devkit.simulator.catalogue import build_catalogue
from sportrix_devkit.simulator.config import DEMO_KEY, ApiKey, SimulatorConfig
from sportrix_devkit.simulator.engines import MatchEngine
from sportrix_devkit.simulator.faults import malformed_frame

__all__ = ["SNAPSHOT", "UPDATE", "Hub", "MatchFeed", "Outgoing", "Session"]

SNAPSHOT = "snapshot"
UPDATE = "update"
_ERROR = "error"
_MALFORMED_IDS_KEPT = 1000
_CATCH_UP_LIMIT = 1.0  # seconds a late schedule may lag before it is reset to now


class MatchFeed:
    """One match: its engine, its current ``update`` frame, its recent history, counters."""

    __slots__ = (
        "_appended",
        "_appended_fragment",
        "_appended_json",
        "_appended_tail",
        "_data_start",
        "_envelope",
        "engine",
        "history",
        "snapshots_sent",
        "subscribers",
        "update_frame",
        "updates_sent",
    )

    def __init__(self, engine: MatchEngine, history: int) -> None:
        self.engine = engine
        #: ``(seq, head, tail)`` of the latest states, ``data`` as JSON being ``head + tail``:
        #: the tail (the append-only field, the bulk of a soccer state) is shared by every
        #: state until the field grows, so a state keeps only its ~1 KB head.
        self.history: deque[tuple[int, bytes, bytes]] = deque(maxlen=history)
        self.subscribers: set[Session] = set()
        self.snapshots_sent = 0
        self.updates_sent = 0
        self.update_frame = b""
        self._envelope: dict[str, Any] = {"op": UPDATE, "match_id": engine.match_id}
        self._data_start = len(b'{"op":"update","match_id":%d,"data":' % engine.match_id)
        field = engine.append_only
        if field is not None and next(reversed(engine.data)) != field:
            raise ValueError(f"the append-only field {field!r} must be the last in data")
        self._appended = 0  # items of the append-only field already in _appended_json
        self._appended_json = b"[]"
        self._appended_fragment = orjson.Fragment(self._appended_json)
        self._appended_tail = b',"%s":[]}' % (field or "").encode()
        self.refresh()

    def refresh(self) -> None:
        """Serialise the engine's current state; call after every change.

        The whole frame is one ``orjson.dumps`` of the envelope, the cached JSON of the
        append-only field spliced in as a fragment; it is sent as it is. The history keeps
        a copy of ``data`` up to that field and shares the field's JSON between states.
        """
        data = self.engine.data
        envelope = self._envelope
        envelope["data"] = data
        field = self.engine.append_only
        start = self._data_start
        if field is None:
            frame = orjson.dumps(envelope)
            head, tail = frame[start:-1], b""
        else:
            # The append-only list (soccer's events) is the bulk of the state and rarely
            # grows: serialise only its new items and splice the cached JSON in its place.
            items = data[field]
            if len(items) != self._appended:
                new = orjson.dumps(items[self._appended :])
                joint = b"," if self._appended else b""
                self._appended_json = self._appended_json[:-1] + joint + new[1:]
                self._appended_fragment = orjson.Fragment(self._appended_json)
                self._appended_tail = b',"%s":%s}' % (field.encode(), self._appended_json)
                self._appended = len(items)
            data[field] = self._appended_fragment
            try:
                frame = orjson.dumps(envelope)
            finally:
                data[field] = items
            tail = self._appended_tail
            head = frame[start : len(frame) - len(tail) - 1]
        self.update_frame = frame
        self.history.append((self.engine.seq, head, tail))

    @property
    def data_json(self) -> bytes:
        """``data`` of the current state, as JSON."""
        return self.update_frame[self._data_start : -1]

    def snapshot_frame(self) -> bytes:
        """The ``snapshot`` frame of the current state."""
        return _SNAPSHOT_HEAD + self.update_frame[_UPDATE_HEAD_LENGTH:]

    def state_at(self, seq: int) -> bytes | None:
        """``data`` (JSON) as it was at ``seq``; ``None`` when evicted or not reached yet."""
        if not self.history:
            return None
        index = seq - self.history[0][0]
        if 0 <= index < len(self.history):
            _, head, tail = self.history[index]
            return head + tail
        return None


_SNAPSHOT_HEAD = b'{"op":"snapshot"'
_UPDATE_HEAD_LENGTH = len(b'{"op":"update"')


#: One frame waiting in a session's outbox: the bytes, a tag (``snapshot``, ``update``,
#: ``error`` or a malformed kind) and the match it concerns.
Outgoing = tuple[bytes, str, MatchFeed | None]


@dataclass(eq=False)
class Session:
    """One client connection: the sports its key may use, its subscriptions, its outbox."""

    sports: frozenset[str] | None
    subscriptions: set[int] = field(default_factory=set)
    outbox: list[Outgoing] = field(default_factory=list)


class Hub:
    """Every match, every session and the statistics; see the module docstring."""

    def __init__(self, config: SimulatorConfig, wall_now: float, loop_now: float) -> None:
        self.config = config
        keys = config.keys or [ApiKey(DEMO_KEY)]
        self.keys: dict[str, ApiKey] = {key.key: key for key in keys}
        self.feeds: dict[int, MatchFeed] = {
            engine.match_id: MatchFeed(engine, config.history)
            for engine in build_catalogue(
                config.seed, config.match_counts(), wall_now, config.speed
            )
        }
        self.sessions: set[Session] = set()
        self.malformed_fraction = config.malformed_fraction
        self.malformed_kinds = config.malformed_kinds
        self._fault_rng = random.Random(f"{config.seed}:faults")
        self._schedule: list[tuple[float, int]] = []
        phases = random.Random(f"{config.seed}:phases")
        for match_id, feed in self.feeds.items():
            # Matches change independently: each starts at its own point of its interval, so
            # with a fixed --update-rate they do not all change on the same tick (a burst).
            interval = self._interval(feed.engine)
            if interval is not None:
                heapq.heappush(self._schedule, (loop_now + phases.random() * interval, match_id))
        self.connections_total = 0
        self.handshakes_accepted = 0
        self.handshakes_refused: Counter[str] = Counter()
        self.client_messages: Counter[str] = Counter()
        self.frames_by_op: Counter[str] = Counter()
        self.frames_by_sport: Counter[str] = Counter()
        self.malformed_by_kind: Counter[str] = Counter()
        self.malformed_match_ids: dict[str, deque[int]] = {}
        self.drops: Counter[str] = Counter()
        self.stalls = 0
        self.ignore_subscribes: Counter[int] = Counter()  # match → subscribes left unanswered
        self.snapshot_padding: dict[int, bytes] = {}  # match → padding added to its snapshots

    # -- keys ---------------------------------------------------------------------------

    def authenticate(self, key: str | None) -> ApiKey | str:
        """The key's :class:`ApiKey` if it may connect, else why not (the refusal reason)."""
        if not key:
            return "missing_key"
        api_key = self.keys.get(key)
        if api_key is None:
            return "unknown_key"
        if api_key.expired:
            return "expired_key"
        if not api_key.scoped:
            return "unscoped_key"
        return api_key

    # -- sessions -----------------------------------------------------------------------

    def open_session(self, api_key: ApiKey) -> Session:
        """A new connection authenticated with ``api_key``."""
        session = Session(api_key.sports)
        self.sessions.add(session)
        self.connections_total += 1
        return session

    def close_session(self, session: Session) -> None:
        """Forget a closed connection and its subscriptions."""
        for match_id in session.subscriptions:
            self.feeds[match_id].subscribers.discard(session)
        session.subscriptions.clear()
        session.outbox.clear()
        self.sessions.discard(session)

    def receive(self, session: Session, message: str | bytes) -> None:
        """Apply one client message; replies land in ``session.outbox``."""
        try:
            request = orjson.loads(message)
        except orjson.JSONDecodeError:
            request = None
        if not isinstance(request, dict):
            self._refuse(session, None, "invalid_message", "message is not a JSON object")
            return
        action, match_id = request.get("action"), request.get("match_id")
        if type(match_id) is not int or action not in ("subscribe", "unsubscribe"):
            known_id = match_id if type(match_id) is int else None
            text = 'expected {"action": "subscribe"|"unsubscribe", "match_id": <integer>}'
            self._refuse(session, known_id, "invalid_message", text)
            return
        self.client_messages[action] += 1
        if action == "unsubscribe":
            if match_id in session.subscriptions:
                session.subscriptions.discard(match_id)
                self.feeds[match_id].subscribers.discard(session)
            return
        feed = self.feeds.get(match_id)
        if self.ignore_subscribes[match_id] > 0:  # a fault: no snapshot, no error
            self.ignore_subscribes[match_id] -= 1
            self.client_messages["ignored_subscribe"] += 1
        elif feed is None:
            self._refuse(session, match_id, "match_not_found", f"no match {match_id}")
        elif session.sports is not None and feed.engine.sport not in session.sports:
            text = f"sport {feed.engine.sport} is not enabled for this key"
            self._refuse(session, match_id, "sport_not_enabled", text)
        elif (
            match_id not in session.subscriptions
            and len(session.subscriptions) >= self.config.max_subscriptions
        ):
            text = f"at most {self.config.max_subscriptions} subscriptions per connection"
            self._refuse(session, match_id, "subscription_limit", text)
        else:
            session.subscriptions.add(match_id)
            feed.subscribers.add(session)
            frame = feed.snapshot_frame()
            padding = self.snapshot_padding.get(match_id)
            if padding is not None:  # a fault: an extra envelope field makes it huge
                frame = frame[:-1] + b',"padding":"' + padding + b'"}'
            session.outbox.append((frame, SNAPSHOT, feed))

    def _refuse(self, session: Session, match_id: int | None, code: str, text: str) -> None:
        self.client_messages[f"refused_{code}"] += 1
        error: dict[str, Any] = {"op": "error"}
        if match_id is not None:
            error["match_id"] = match_id
        error.update(code=code, error=text)
        session.outbox.append((orjson.dumps(error), _ERROR, None))

    # -- time ---------------------------------------------------------------------------

    def next_due(self) -> float | None:
        """The loop time of the next scheduled change, ``None`` when every match is over."""
        return self._schedule[0][0] if self._schedule else None

    def run_due(self, wall_now: float, loop_now: float, budget: int) -> set[Session]:
        """Step up to ``budget`` matches whose change is due; returns the sessions touched."""
        touched: set[Session] = set()
        schedule = self._schedule
        while schedule and schedule[0][0] <= loop_now and budget > 0:
            due, match_id = heapq.heappop(schedule)
            feed = self.feeds[match_id]
            engine = feed.engine
            if engine.finished:
                continue
            engine.step(wall_now)
            self._publish(feed, touched)
            self._reschedule(match_id, engine, due, loop_now)
            budget -= 1
        return touched

    def finish(self, match_id: int, wall_now: float) -> set[Session] | None:
        """End a match now; the sessions touched, or ``None`` when there is no such match."""
        feed = self.feeds.get(match_id)
        if feed is None:
            return None
        touched: set[Session] = set()
        if feed.engine.finish(wall_now):
            self._publish(feed, touched)
        return touched

    def _reschedule(self, match_id: int, engine: MatchEngine, due: float, loop_now: float) -> None:
        """Schedule the match's next change one interval after ``due``, the one just made.

        A schedule far behind (a slow start-up, play paused by backpressure) skips whole
        intervals rather than catching up all at once, so each match keeps its own phase.
        """
        interval = self._interval(engine)
        if interval is None:
            return
        next_due = due + interval
        behind = loop_now - _CATCH_UP_LIMIT - next_due
        if behind > 0:
            next_due += math.ceil(behind / interval) * interval if interval > 0 else behind
        heapq.heappush(self._schedule, (next_due, match_id))

    def _interval(self, engine: MatchEngine) -> float | None:
        """Seconds until the match's next change; ``None`` once it is over."""
        if engine.next_delay is None:
            return None
        rate = self.config.update_rate
        return 1.0 / rate if rate else engine.next_delay / self.config.speed

    def _publish(self, feed: MatchFeed, touched: set[Session]) -> None:
        feed.refresh()
        if not feed.subscribers:
            return
        frame = feed.update_frame
        fraction = self.malformed_fraction
        for session in feed.subscribers:
            session.outbox.append((frame, UPDATE, feed))
            if fraction and self._fault_rng.random() < fraction:
                kind = self._fault_rng.choice(self.malformed_kinds)
                bad = malformed_frame(kind, feed.engine.match_id, feed.data_json)
                session.outbox.append((bad, kind, feed))
        touched |= feed.subscribers

    # -- statistics ---------------------------------------------------------------------

    def count_sent(self, sent: list[Outgoing]) -> None:
        """Record frames the adapter has written to a socket."""
        by_op, by_sport = self.frames_by_op, self.frames_by_sport
        for _, tag, feed in sent:
            if tag == UPDATE and feed is not None:
                feed.updates_sent += 1
            elif tag == SNAPSHOT and feed is not None:
                feed.snapshots_sent += 1
            elif tag != _ERROR:
                self._count_malformed(tag, feed)
                continue
            by_op[tag] += 1
            if feed is not None:
                by_sport[feed.engine.sport] += 1

    def _count_malformed(self, kind: str, feed: MatchFeed | None) -> None:
        self.malformed_by_kind[kind] += 1
        if feed is not None:
            ids = self.malformed_match_ids.setdefault(kind, deque(maxlen=_MALFORMED_IDS_KEPT))
            ids.append(feed.engine.match_id)

    def stats(self) -> dict[str, Any]:
        """Everything counted so far, as JSON-ready values (``GET /_sim/stats``)."""
        return {
            "connections_open": len(self.sessions),
            "connections_total": self.connections_total,
            "handshakes_accepted": self.handshakes_accepted,
            "handshakes_refused": dict(self.handshakes_refused),
            "client_messages": dict(self.client_messages),
            "frames_sent": {
                "by_op": dict(self.frames_by_op),
                "by_sport": dict(self.frames_by_sport),
            },
            "malformed_sent": {
                "by_kind": dict(self.malformed_by_kind),
                "match_ids": {kind: list(ids) for kind, ids in self.malformed_match_ids.items()},
            },
            "drops": dict(self.drops),
            "stalls": self.stalls,
            "matches": {
                str(match_id): {
                    "sport": feed.engine.sport,
                    "status": feed.engine.data["status"],
                    "last_seq": feed.engine.seq,
                    "snapshots_sent": feed.snapshots_sent,
                    "updates_sent": feed.updates_sent,
                    "subscribers": len(feed.subscribers),
                }
                for match_id, feed in self.feeds.items()
            },
        }

    def catalogue(self) -> list[dict[str, Any]]:
        """The ``GET /v1/matches`` listing."""
        keys = ("match_id", "sport", "competition", "home", "away", "status")
        return [{key: feed.engine.data[key] for key in keys} for feed in self.feeds.values()]
