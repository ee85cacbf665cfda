"""One upstream WebSocket connection, kept alive forever (asyncio adapter).

The session owns the reconnect loop (``websockets``' own reconnect iterator gives up on a
401, so it is not used): connect with the key in the ``X-API-Key`` header, report the
connection to the :class:`~ingester.upstream.subscriptions.SubscriptionBook` (which
re-subscribes what the connection carries), hand every message read to the
:class:`FrameSink` it is given (the daemon wires the pipeline and the record buffer behind
it), and on any failure back off with full jitter and try again. A connection on which nothing
(no frame, no ping) arrived for ``idle_timeout`` seconds is dead and is replaced. A
connection left without matches is closed cleanly and read to its end
(:meth:`~UpstreamSession.close_cleanly`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.frames import CloseCode, Frame, Opcode
from websockets.protocol import Event

from ingester.core.backoff import Backoff
from ingester.observe.metrics import Metrics
from ingester.settings import Settings
from ingester.upstream.subscriptions import Action, SubscriptionBook
from ingester.upstream.transport import (
    TransportError,
    UpstreamTransport,
    classify_failure,
    redact_url,
)

__all__ = ["ConnectionState", "Fed", "FrameSink", "SessionConfig", "UpstreamSession", "redact_url"]

log = logging.getLogger(__name__)

_MAX_MESSAGE_BYTES = 4 * 1024 * 1024
_OVERSIZED_HEAD_BYTES = 64 * 1024  # of a message over the limit, kept for its dead letter
_CLOSE = None  # in the control outbox: close the connection cleanly


#: What a :class:`FrameSink` answers for a message: the book's actions it asks for (a
#: re-subscribe after a ``seq`` gap), or an awaitable of them while its record waits for room.
Fed = list[Action] | Awaitable[list[Action]]


class FrameSink(Protocol):
    """Where a session hands every message it reads.

    ``connection`` is the session's index, ``None`` while it is closing (it then holds no
    match). An answer that is not a list must be awaited before the next read: the message's
    record is waiting for room, so reading pauses and TCP pushes back on the upstream.
    """

    @property
    def full(self) -> bool:
        """True while a message's record would wait for room (reading is paused)."""

    def feed(self, raw: bytes, received_at: float, now: float, connection: int | None) -> Fed:
        """Take one message read at wall-clock ``received_at`` (monotonic ``now``)."""

    def feed_oversized(
        self, head: bytes, reason: str, received_at: float, connection: int | None
    ) -> Fed:
        """Take a message over the size limit, of which only ``head`` was kept."""


@dataclass(frozen=True, slots=True)
class SessionConfig:
    """What every session of a pool shares; ``read_key`` gives the API key per attempt."""

    settings: Settings
    transport: UpstreamTransport
    sink: FrameSink
    metrics: Metrics
    read_key: Callable[[], str | None]


class ConnectionState(StrEnum):
    """What a session is doing now (the ``state`` label of the connections gauge)."""

    CONNECTING = "connecting"
    CONNECTED = "connected"
    BACKOFF = "backoff"


class _Disconnect(Exception):
    """Why a live connection ended; ``reason`` is the reconnects metric label."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


class _TrackedConnection(ClientConnection):
    """A client connection that notes when the server last sent anything, pings included,
    and keeps the first bytes of a message over ``max_size`` (``oversized``, with the
    reason), which websockets discards before it closes the connection with 1009."""

    last_activity: float = 0.0
    oversized: tuple[bytes, str] | None = None
    _first_fragment: Frame | None = None  # of a fragmented message not yet complete

    def __init__(self, protocol: ClientProtocol, *args: Any, **kwargs: Any) -> None:
        super().__init__(protocol, *args, **kwargs)
        fail = protocol.fail

        def fail_keeping_head(code: int, reason: str = "") -> None:
            # The parser calls this on the header announcing too many bytes, the payload's
            # first bytes at the front of the reader's buffer. With compression on, the limit
            # is met after inflating, the buffer holds what follows: nothing is kept then.
            # A fragmented message's start is its first fragment (maybe parsed in this very
            # read, its event not processed yet).
            if code == CloseCode.MESSAGE_TOO_BIG and self.oversized is None:
                for event in protocol.events:
                    self._track(event)
                if self._first_fragment is not None:
                    head = bytes(self._first_fragment.data[:_OVERSIZED_HEAD_BYTES])
                elif protocol.extensions:
                    head = b""
                else:
                    head = bytes(protocol.reader.buffer[:_OVERSIZED_HEAD_BYTES])
                self.oversized = (head, reason)
            fail(code, reason)

        protocol.fail = fail_keeping_head  # type: ignore[method-assign]

    def data_received(self, data: bytes) -> None:
        self.last_activity = time.monotonic()
        super().data_received(data)

    def process_event(self, event: Event) -> None:
        self._track(event)
        super().process_event(event)

    def _track(self, event: Event) -> None:
        """Note the first fragment of a message until its last one comes."""
        if isinstance(event, Frame):
            if event.opcode is Opcode.TEXT or event.opcode is Opcode.BINARY:
                self._first_fragment = None if event.fin else event
            elif event.opcode is Opcode.CONT and event.fin:
                self._first_fragment = None


class UpstreamSession:
    """Upstream connection number ``index``; :meth:`run` until cancelled or closed cleanly.

    It tells ``book`` when it connects, disconnects and sends a subscribe, and hands the
    book's actions (its own and those a message asks for) to ``execute``.
    """

    def __init__(
        self,
        index: int,
        config: SessionConfig,
        book: SubscriptionBook,
        execute: Callable[[list[Action]], None],
    ) -> None:
        self.index = index
        self.state = ConnectionState.CONNECTING
        self.auth_rejected = False
        #: Why the last attempt failed (``None`` once connected): for ``/readyz``.
        self.last_failure: str | None = None
        self.connected_since: float | None = None
        self._closing = False
        settings = self._settings = config.settings
        self._sink = config.sink
        self._metrics = config.metrics
        self._read_key = config.read_key
        self._transport = config.transport
        self._book = book
        self._execute = execute
        self._backoff = Backoff(
            base=settings.backoff_base,
            cap=settings.backoff_cap,
            reset_after=settings.backoff_reset_after,
        )
        self._outbox: asyncio.Queue[tuple[str, int] | None] = asyncio.Queue()
        self._websocket: _TrackedConnection | None = None
        self._dropped: _Disconnect | None = None  # why this side aborted the connection

    def send_control(self, action: str, match_id: int) -> None:
        """Queue a ``subscribe``/``unsubscribe``; sent (paced) while connected, else dropped.

        Dropping is safe: on the next connect every wanted match is subscribed again. A
        subscribe's answer is due from when it is sent (``on_subscribe_sent``), not queued.
        """
        if self.state is ConnectionState.CONNECTED:
            self._outbox.put_nowait((action, match_id))

    def replace(self, detail: str) -> None:
        """Drop the connection now and connect again (counted as ``unanswered``); nothing
        when not connected or closing. The book re-subscribes its matches on the new one."""
        if self.state is ConnectionState.CONNECTED and not self._closing:
            log.warning("connection %d: %s, replacing it", self.index, detail)
            self._drop(_Disconnect("unanswered", detail))

    def _drop(self, why: _Disconnect) -> None:
        """Abort the live connection; its read loop ends with ``why``."""
        if self._websocket is not None and self._dropped is None:
            self._dropped = why
            self._websocket.transport.abort()

    def close_cleanly(self) -> bool:
        """Close a connected session cleanly; ``False`` (nothing done) when not connected.

        Queued control messages are dropped (the connection carries no match any more) and
        a close frame goes out at once. Reading goes on until the upstream answers it, so
        every frame sent before goes to the sink as read on no connection (a stray), within
        the connection's 5 s close timeout (then it is aborted, with a warning). Then
        :meth:`run` returns without reconnecting and without telling the book or carrying
        out actions: the book may already have given this connection's index to a new one.
        """
        if self.state is not ConnectionState.CONNECTED:
            return False
        self._closing = True
        while not self._outbox.empty():
            self._outbox.get_nowait()
        self._outbox.put_nowait(_CLOSE)
        return True

    async def run(self) -> None:
        """Connect, read, reconnect; until cancelled or closed cleanly."""
        try:
            while True:
                try:
                    await self._connect_and_read()
                    raise _Disconnect("closed", "connection ended")
                except _Disconnect as exc:
                    disconnect = exc
                except Exception as exc:  # a bug must not end the connection for good
                    log.exception("connection %d: unexpected failure", self.index)
                    disconnect = _Disconnect("error", type(exc).__name__)
                if self._closing:
                    self._log_closed(disconnect)
                    return
                self._metrics.upstream_reconnects.labels(reason=disconnect.reason).inc()
                self.last_failure = f"{disconnect.reason}: {disconnect}"
                floor = self._settings.auth_backoff if disconnect.reason == "auth_failed" else 0.0
                delay = self._backoff.next_delay(time.monotonic(), floor)
                self._log_disconnect(disconnect, delay)
                self.state = ConnectionState.BACKOFF
                await asyncio.sleep(delay)
        finally:
            self.state = ConnectionState.CONNECTING

    def _log_closed(self, exc: _Disconnect) -> None:
        if exc.reason == "closed":  # the upstream answered the close frame
            log.info("connection %d: closed cleanly (no match left on it)", self.index)
        else:
            log.warning(
                "connection %d: closed (no match left on it) without the upstream's answer "
                "(%s): frames it still held were not read",
                self.index,
                exc,
            )

    def _log_disconnect(self, exc: _Disconnect, delay: float) -> None:
        if exc.reason == "auth_failed":
            log.error(
                "connection %d: API key rejected by the upstream (%s); retrying in %.0fs",
                self.index,
                exc,
                delay,
            )
        else:
            log.warning(
                "connection %d: %s (%s); reconnecting in %.1fs", self.index, exc.reason, exc, delay
            )

    async def _connect_and_read(self) -> None:
        self.state = ConnectionState.CONNECTING
        settings = self._settings
        try:
            key = self._read_key()
        except OSError as exc:
            self.auth_rejected = True
            raise _Disconnect("auth_failed", f"SPORTRIX_API_KEY_FILE unreadable: {exc}") from None
        headers = {"X-API-Key": key} if key else {}
        for warning in self._transport.warnings:
            log.warning("connection %d: %s", self.index, warning)
        try:
            websocket = await connect(
                settings.url,
                additional_headers=headers,
                create_connection=_TrackedConnection,
                open_timeout=10,
                ping_interval=20,
                ping_timeout=settings.idle_timeout - 20,
                close_timeout=5,
                max_size=_MAX_MESSAGE_BYTES,
                max_queue=256,
                **self._transport.connect_kwargs(),
            )
        except (InvalidHandshake, TimeoutError, OSError, TransportError) as exc:
            failure = classify_failure(exc, self._transport)
            if failure.reason == "auth_failed":
                self.auth_rejected = True
            raise _Disconnect(failure.reason, failure.cause) from None
        assert isinstance(websocket, _TrackedConnection)
        self.auth_rejected = False
        await self._serve(websocket)

    async def _serve(self, websocket: _TrackedConnection) -> None:
        self.state = ConnectionState.CONNECTED
        self.connected_since = time.monotonic()
        self.last_failure = None
        self._backoff.connected(self.connected_since)
        websocket.last_activity = self.connected_since
        self._websocket, self._dropped = websocket, None
        log.info(
            "connection %d: connected to %s%s",
            self.index,
            redact_url(self._settings.url),
            self._transport.via,
        )
        self._outbox = asyncio.Queue()
        self._execute(self._book.connected(self.index))
        writer = asyncio.create_task(self._write(websocket), name=f"upstream-{self.index}-write")
        watchdog = asyncio.create_task(self._watch(websocket), name=f"upstream-{self.index}-watch")
        try:
            await self._read(websocket)
        except ConnectionClosed as exc:
            if self._dropped is not None:
                raise self._dropped from None
            if exc.sent is not None and exc.sent.code == CloseCode.MESSAGE_TOO_BIG:
                raise _Disconnect("message_too_big", exc.sent.reason) from None
            if exc.rcvd is not None:
                raise _Disconnect("closed", f"close code {exc.rcvd.code}") from None
            if exc.sent is not None and exc.sent.code == 1011:
                raise _Disconnect("timeout", "keepalive ping unanswered") from None
            raise _Disconnect("error", "connection lost without a close frame") from None
        finally:
            self.connected_since = None
            self._websocket = None
            self.state = ConnectionState.BACKOFF
            if not self._closing:
                self._book.disconnected(self.index)
            for task in (writer, watchdog):
                task.cancel()
            await asyncio.gather(writer, watchdog, return_exceptions=True)
            # Not asyncio.wait_for: on Python 3.11 it swallows a cancellation (the pool
            # stopping) that comes as the close completes, and the session reconnects.
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5):
                    await websocket.close()

    async def _read(self, websocket: _TrackedConnection) -> None:
        sink = self._sink
        feed = sink.feed
        execute = self._execute
        paused = self._metrics.upstream_paused
        loop_time = asyncio.get_running_loop().time
        while True:
            try:
                raw = await websocket.recv(decode=False)
            except ConnectionClosed:  # the next recv raises it again
                oversized, websocket.oversized = websocket.oversized, None
                if oversized is None:
                    raise
                raw = None
            # A closing connection holds no match: its index may be another session's by now.
            connection = None if self._closing else self.index
            if raw is None:
                assert oversized is not None
                fed = sink.feed_oversized(*oversized, time.time(), connection)
            else:
                fed = feed(raw, time.time(), loop_time(), connection)
            if not isinstance(fed, list):  # its record waits for room: reading pauses
                paused.set(1)
                fed = await fed
                paused.set(0)
            if fed and not self._closing:  # it may have started closing while paused
                execute(fed)

    async def _write(self, websocket: _TrackedConnection) -> None:
        """Send queued control messages, at most ``subscribe_rate`` per second."""
        interval = 1.0 / self._settings.subscribe_rate
        loop = asyncio.get_running_loop()
        next_slot = loop.time()
        while True:
            message = await self._outbox.get()
            if message is _CLOSE:
                await websocket.close()
                return
            now = loop.time()
            if next_slot > now:
                await asyncio.sleep(next_slot - now)
            next_slot = max(next_slot, now) + interval
            action, match_id = message
            await websocket.send(orjson.dumps({"action": action, "match_id": match_id}).decode())
            if action == "subscribe" and not self._closing:
                self._book.subscribe_sent(self.index, match_id, time.monotonic())

    async def _watch(self, websocket: _TrackedConnection) -> None:
        """Drop the connection when it has been silent for ``idle_timeout``."""
        timeout = self._settings.idle_timeout
        while True:
            silent = time.monotonic() - websocket.last_activity
            if silent >= timeout:
                log.warning("connection %d: silent for %.0fs, replacing it", self.index, silent)
                self._drop(_Disconnect("timeout", "no frame and no ping"))
                return
            await asyncio.sleep(min(5.0, timeout - silent))

    def describe(self) -> dict[str, Any]:
        """JSON-ready view for ``/status``."""
        return {
            "connection": self.index,
            "state": self.state.value,
            "auth_rejected": self.auth_rejected,
            "last_failure": self.last_failure,
            "connected_seconds": (
                round(time.monotonic() - self.connected_since, 1)
                if self.connected_since is not None
                else None
            ),
        }
