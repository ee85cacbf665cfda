"""The asyncio adapter: a ``websockets`` server around the sans-I/O :class:`~.core.Hub`.

One task plays every match (no task per frame or per match); frames are pre-serialised by
the hub and written in batches straight into each connection's protocol, the way
``websockets.broadcast`` does, with a write-buffer high-water mark for flow control.
Plain HTTP GETs on the same port serve ``/v1/matches`` and the ``/_sim/`` control endpoints
(:mod:`.control`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import ssl
import struct
import time
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.protocol import State

from sportrix_devkit.simulator.config import DEMO_KEY, ApiKey, SimulatorConfig
from sportrix_devkit.simulator.control import route
from sportrix_devkit.simulator.core import Hub, Outgoing, Session

__all__ = ["CLOSE_CODES", "Simulator", "play_delay"]

log = logging.getLogger("sportrix_devkit.simulator")

#: Close codes cycled through when connections are dropped with a close frame.
CLOSE_CODES = (1001, 1011, 1013)
_STEP_BUDGET = 2000  # match changes per scheduling round before yielding to the readers
_FLUSH_CHUNK = 4096  # frames written to one connection per round
_WRITE_HIGH = 4 * 1024 * 1024  # bytes buffered in a transport before we stop writing to it
_OUTBOX_HIGH = 4 * _FLUSH_CHUNK  # frames waiting for one client before play pauses
_BACKLOG_POLL = 0.001
_IDLE_POLL = 0.5
_MAX_MESSAGE = 64 * 1024
_SHORT_HEADER = struct.Struct("!BB")
_MEDIUM_HEADER = struct.Struct("!BBH")
_LONG_HEADER = struct.Struct("!BBQ")


def _text_frames(batch: list[Outgoing]) -> bytes:
    """Unmasked, unfragmented RFC 6455 text frames, one per payload, as one buffer.

    What ``protocol.send_text`` + ``send_data`` would write when no extension is in use,
    built in one pass and handed to the transport in one call.
    """
    parts: list[bytes] = []
    append = parts.append
    for payload, _, _ in batch:
        length = len(payload)
        if length < 126:
            append(_SHORT_HEADER.pack(0x81, length))
        elif length < 65536:
            append(_MEDIUM_HEADER.pack(0x81, 126, length))
        else:
            append(_LONG_HEADER.pack(0x81, 127, length))
        append(payload)
    return b"".join(parts)


def _server_tls(config: SimulatorConfig) -> ssl.SSLContext | None:
    """The server's TLS context when ``config.tls_cert`` is set (else plain ``ws://``)."""
    if config.tls_cert is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(config.tls_cert, config.tls_key)
        if config.tls_client_ca is not None:
            context.load_verify_locations(cafile=config.tls_client_ca)
            context.verify_mode = ssl.CERT_REQUIRED
    except OSError as exc:  # ssl.SSLError included
        ssl_error = isinstance(exc, ssl.SSLError)
        detail = "not a usable PEM certificate or key" if ssl_error else exc.strerror
        raise OSError(f"--tls-cert/--tls-key/--tls-client-ca cannot be loaded: {detail}") from None
    return context


def play_delay(congested: bool, backlogged: bool, due: float | None, now: float) -> float:
    """Seconds the play loop sleeps after a round, at loop time ``now``.

    ``due`` is the next scheduled change (``None``: every match is over). While a client is
    far behind (``congested``) play waits for it whatever is due, polling its socket: a due
    change must not turn the wait into a busy loop that takes the client's CPU.
    """
    if congested:
        return _BACKLOG_POLL
    delay = _IDLE_POLL if due is None else min(_IDLE_POLL, due - now)
    if backlogged:
        delay = min(delay, _BACKLOG_POLL)
    return max(0.0, delay)


class Simulator:
    """A running simulator: ``async with Simulator(config) as sim: ...``.

    ``sim.url`` is the stream's ``ws://`` URL, ``sim.http_url`` the base of the HTTP
    endpoints, ``sim.stats()`` the counters served at ``/_sim/stats``. The methods
    :meth:`drop`, :meth:`refuse`, :meth:`stall`, :meth:`set_malformed`, :meth:`finish`,
    :meth:`add_key` and :meth:`revoke_key` are the control endpoints' actions.
    """

    def __init__(self, config: SimulatorConfig | None = None) -> None:
        self.config = config or SimulatorConfig()
        self._hub: Hub | None = None
        self._server: Server | None = None
        self._connections: dict[Session, ServerConnection] = {}
        self._accepted: dict[ServerConnection, ApiKey] = {}
        self._backlogged: set[Session] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._close_codes = itertools.cycle(CLOSE_CODES)
        self._refuse_until = 0.0
        self._refuse_status = 503
        self._stall_until = 0.0
        self._running = asyncio.Event()
        self._running.set()
        self.pings_sent = 0

    # -- life cycle ---------------------------------------------------------------------

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        """Build the catalogue, listen, and start playing."""
        config = self.config
        loop = asyncio.get_running_loop()
        self._hub = Hub(config, time.time(), loop.time())
        self._server = await serve(
            self._serve_connection,
            config.host,
            config.port,
            process_request=self._process_request,
            ping_interval=None,  # our own keepalive pings every connection from one task
            compression=None,
            max_size=_MAX_MESSAGE,
            logger=logging.getLogger("sportrix_devkit.simulator.websockets"),
            ssl=_server_tls(config),
        )
        self._spawn(self._play())
        self._spawn(self._keepalive())
        if config.drop_every:
            self._spawn(self._drop_periodically(config.drop_every))
        if config.refuse_for:
            self.refuse(config.refuse_for)
        if config.stall_after is not None:
            self._spawn(self._stall_later(config.stall_after, config.stall_for))
        if not config.keys:
            log.warning("no API key configured: accepting the key %r for every sport", DEMO_KEY)
        log.info(
            "simulator serving %s (%s matches, seed %d)",
            self.url,
            ", ".join(f"{count} {sport}" for sport, count in config.match_counts().items()),
            config.seed,
        )

    async def stop(self) -> None:
        """Stop playing, close every connection and the listening socket."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def serve_forever(self) -> None:
        """Run until cancelled."""
        await asyncio.Future()

    # -- where -------------------------------------------------------------------------

    @property
    def hub(self) -> Hub:
        """The sans-I/O core (matches, sessions, counters); only valid once started."""
        assert self._hub is not None, "the simulator is not started"
        return self._hub

    @property
    def port(self) -> int:
        """The port listened on (the real one when the config asked for port 0)."""
        assert self._server is not None, "the simulator is not started"
        port: int = next(iter(self._server.sockets)).getsockname()[1]
        return port

    @property
    def url(self) -> str:
        """The stream URL, ``ws://host:port/v1/stream`` (``wss://`` with TLS)."""
        scheme = "wss" if self.config.tls_cert else "ws"
        return f"{scheme}://{self.config.host}:{self.port}/v1/stream"

    @property
    def http_url(self) -> str:
        """The base URL of the HTTP endpoints, ``http://host:port`` (``https://`` with TLS)."""
        scheme = "https" if self.config.tls_cert else "http"
        return f"{scheme}://{self.config.host}:{self.port}"

    def stats(self) -> dict[str, Any]:
        """The hub's counters plus the fault state now in force."""
        loop = asyncio.get_running_loop()
        stats = self.hub.stats()
        stats["pings_sent"] = self.pings_sent
        stats["faults"] = {
            "refusing_for": max(0.0, self._refuse_until - loop.time()),
            "stalled_for": max(0.0, self._stall_until - loop.time()),
            "malformed_fraction": self.hub.malformed_fraction,
            "malformed_kinds": list(self.hub.malformed_kinds),
        }
        return stats

    # -- control actions ---------------------------------------------------------------

    def drop(self, mode: str = "close", code: int | None = None) -> int:
        """Drop every connection now (``close``: a close frame; ``abrupt``: no close frame)."""
        if mode not in ("close", "abrupt"):
            raise ValueError("mode must be close or abrupt")
        connections = list(self._connections.values())
        for connection in connections:
            if mode == "abrupt":
                connection.transport.abort()
            else:
                close_code = code or next(self._close_codes)
                self._spawn(connection.close(close_code, "simulator drop"))
        self.hub.drops[mode] += len(connections)
        log.info("dropped %d connections (%s)", len(connections), mode)
        return len(connections)

    def refuse(self, seconds: float, status: int = 503) -> None:
        """Answer every stream handshake with HTTP ``status`` for ``seconds``."""
        self._refuse_until = asyncio.get_running_loop().time() + seconds
        self._refuse_status = status

    def stall(self, seconds: float) -> None:
        """Stop reading from and writing to every connection for ``seconds``."""
        loop = asyncio.get_running_loop()
        self._stall_until = max(self._stall_until, loop.time() + seconds)
        self._running.clear()
        for connection in self._connections.values():
            connection.transport.pause_reading()
        self.hub.stalls += 1
        loop.call_at(self._stall_until, self._end_stall)

    def set_malformed(self, fraction: float, kinds: tuple[str, ...] | None = None) -> None:
        """After each update, send a malformed frame with probability ``fraction``."""
        if not 0.0 <= fraction <= 1.0:
            raise ValueError("fraction must be between 0 and 1")
        self.hub.malformed_fraction = fraction
        if kinds is not None:
            self.hub.malformed_kinds = SimulatorConfig(malformed_kinds=kinds).malformed_kinds

    def ignore_subscribes(self, match_id: int, count: int) -> None:
        """Leave the next ``count`` subscribes to ``match_id`` unanswered (no snapshot, no
        error), on any connection."""
        self.hub.ignore_subscribes[match_id] = count

    def pad_snapshots(self, match_id: int, size: int) -> None:
        """Make ``match_id``'s snapshots ``size`` bytes larger (an extra ``padding`` field of
        the frame); ``0`` stops it."""
        if size > 0:
            self.hub.snapshot_padding[match_id] = b"x" * size
        else:
            self.hub.snapshot_padding.pop(match_id, None)

    def finish(self, match_id: int) -> bool:
        """End a match now (status ``finished``); ``False`` when there is no such match."""
        touched = self.hub.finish(match_id, time.time())
        if touched is None:
            return False
        self._flush_all(touched)
        return True

    def add_key(self, spec: str) -> ApiKey:
        """Accept ``KEY[:sport,sport]`` from now on."""
        api_key = ApiKey.parse(spec)
        self.hub.keys[api_key.key] = api_key
        return api_key

    def revoke_key(self, key: str) -> bool:
        """Refuse ``key`` in new handshakes from now on; ``False`` when it was unknown."""
        return self.hub.keys.pop(key, None) is not None

    # -- handshakes and HTTP -------------------------------------------------------------

    async def _process_request(
        self, connection: ServerConnection, request: Request
    ) -> Response | None:
        url = urlsplit(request.path)
        query = parse_qs(url.query)
        if url.path != "/v1/stream":
            status, body = route(self, url.path, query)
            response = connection.respond(status, body)
            del response.headers["Content-Type"]
            response.headers["Content-Type"] = "application/json"
            return response
        await self._running.wait()
        hub = self.hub
        if asyncio.get_running_loop().time() < self._refuse_until:
            hub.handshakes_refused["service_unavailable"] += 1
            response = connection.respond(self._refuse_status, "Service unavailable, retry\n")
            response.headers["Retry-After"] = "1"
            return response
        key = request.headers.get("X-API-Key") or query.get("key", [None])[0]
        verdict = hub.authenticate(key)
        if isinstance(verdict, str):
            hub.handshakes_refused[verdict] += 1
            return connection.respond(401, f"Unauthorized: {verdict}\n")
        hub.handshakes_accepted += 1
        self._accepted[connection] = verdict
        return None

    # -- connections ---------------------------------------------------------------------

    async def _serve_connection(self, connection: ServerConnection) -> None:
        hub = self.hub
        session = hub.open_session(self._accepted.pop(connection))
        self._connections[session] = connection
        if not self._running.is_set():
            connection.transport.pause_reading()
        try:
            async for message in connection:
                await self._running.wait()
                hub.receive(session, message)
                self._flush(session, connection)
        except ConnectionClosed:
            pass
        finally:
            del self._connections[session]
            self._backlogged.discard(session)
            hub.close_session(session)

    def _flush(self, session: Session, connection: ServerConnection) -> None:
        """Write (part of) a session's outbox, unless stalled or the socket is backed up."""
        if not session.outbox or not self._running.is_set():
            return
        if connection.protocol.state is not State.OPEN:
            session.outbox.clear()
            return
        if connection.transport.get_write_buffer_size() > _WRITE_HIGH:
            self._backlogged.add(session)
            return
        batch = session.outbox
        if len(batch) > _FLUSH_CHUNK:
            batch, session.outbox = batch[:_FLUSH_CHUNK], batch[_FLUSH_CHUNK:]
        else:
            session.outbox = []
        if connection.protocol.extensions:
            send_text = connection.protocol.send_text
            for frame, _, _ in batch:
                send_text(frame)
            connection.send_data()
        else:
            connection.transport.write(_text_frames(batch))
        self.hub.count_sent(batch)
        if session.outbox:
            self._backlogged.add(session)
        else:
            self._backlogged.discard(session)

    def _flush_all(self, sessions: set[Session]) -> None:
        for session in sessions:
            connection = self._connections.get(session)
            if connection is not None:
                self._flush(session, connection)

    # -- background tasks ----------------------------------------------------------------

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _play(self) -> None:
        """Step every due match, fan frames out, flush; the only hot loop."""
        loop = asyncio.get_running_loop()
        hub = self.hub
        while True:
            congested = self._congested()
            if congested:
                touched = set(self._backlogged)
            else:
                touched = hub.run_due(time.time(), loop.time(), _STEP_BUDGET)
                touched |= self._backlogged
            self._flush_all(touched)
            backlogged = bool(self._backlogged) and self._running.is_set()
            await asyncio.sleep(play_delay(congested, backlogged, hub.next_due(), loop.time()))

    def _congested(self) -> bool:
        """Backpressure: a client far behind pauses play rather than losing frames."""
        return self._running.is_set() and any(
            len(session.outbox) > _OUTBOX_HIGH for session in self._backlogged
        )

    async def _keepalive(self) -> None:
        """Ping every connection every ``ping_interval`` seconds (not while stalled)."""
        while True:
            await asyncio.sleep(self.config.ping_interval)
            if not self._running.is_set():
                continue
            for connection in self._connections.values():
                if connection.protocol.state is State.OPEN:
                    connection.protocol.send_ping(os.urandom(4))
                    connection.send_data()
                    self.pings_sent += 1

    async def _drop_periodically(self, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            self.drop(self.config.drop_mode)

    async def _stall_later(self, after: float, seconds: float) -> None:
        await asyncio.sleep(after)
        self.stall(seconds)

    def _end_stall(self) -> None:
        if asyncio.get_running_loop().time() < self._stall_until or self._running.is_set():
            return
        self._running.set()
        for connection in self._connections.values():
            with contextlib.suppress(RuntimeError):
                connection.transport.resume_reading()
        self._flush_all(set(self._connections))
