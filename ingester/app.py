"""``sportrix-ingester run``: the daemon, wiring every stage together.

upstream sessions → :class:`FrameProcessor` (decode, validate, convert, encode) →
:class:`RecordBuffer` → :class:`KafkaSink`, steered by the :class:`ConfigConsumer` (which
matches this replica follows) and watched through the :class:`OpsServer`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import signal
import sys
import time
from typing import Any

import aiokafka.codec
import uvloop
from aiokafka import AIOKafkaProducer

from ingester import __version__
from ingester.codecs import build_codecs, classify_error
from ingester.control.assignment import Change, Follow
from ingester.control.commands import encode_command
from ingester.control.consumer import ConfigConsumer
from ingester.control.topics import TopicError, ensure_topics
from ingester.observe.http import OpsServer
from ingester.observe.logs import SecretScrubber, configure_logging
from ingester.observe.metrics import Metrics
from ingester.pipeline import FrameProcessor, OutRecord
from ingester.produce.buffer import RecordBuffer
from ingester.produce.compression import apply_compression_level
from ingester.produce.kafka_client import client_kwargs
from ingester.produce.sink import KafkaSink
from ingester.settings import ConfigError, Settings, add_setting_flags, load_settings
from ingester.supervisor import Fatal, Supervisor
from ingester.upstream.pool import UpstreamPool
from ingester.upstream.session import redact_url
from ingester.upstream.subscriptions import SubscriptionBook

__all__ = ["Daemon", "register"]

log = logging.getLogger("ingester")

_TICK_SECONDS = 1.0


class Daemon:
    """The running ingester; :meth:`run` returns the process exit code."""

    def __init__(self, settings: Settings, scrubber: SecretScrubber) -> None:
        self.settings = settings
        self.metrics = Metrics()
        self._scrubber = scrubber
        _check_codec(settings.compression)
        self._compression_level = apply_compression_level(
            settings.compression, settings.compression_level
        )
        self.book = SubscriptionBook(
            per_connection=settings.subscriptions_per_connection,
            max_matches=settings.max_matches,
            refused_retry=settings.refused_retry,
            retire_after=settings.retire_after,
            subscribe_timeout=settings.subscribe_timeout,
        )
        self.buffer = RecordBuffer(settings.buffer_records)
        self.metrics.buffer_capacity.set(settings.buffer_records)
        self._codecs, self._prepare_codecs = build_codecs(settings)
        self.metrics.prime_sports(self._codecs)
        self.processor = FrameProcessor(
            self.book,
            self._codecs,
            classify_error,
            self.metrics,
            topic=settings.topic,
            dlq_topic=settings.dlq_topic,
            instance_id=settings.instance_id,
        )
        self.pool = UpstreamPool(
            settings,
            self.book,
            self.processor,
            self.buffer,
            self.metrics,
            on_retire=self._retire,
            read_key=self._read_api_key,
        )
        scrubber.add_url(self.pool.transport.proxy)  # proxy credentials
        self.sink = KafkaSink(self.buffer, self.metrics, self._new_producer)
        self.config = ConfigConsumer(
            self._kafka_kwargs,
            topic=settings.config_topic,
            group_id=settings.group_id,
            session_timeout_ms=settings.session_timeout_ms,
            metrics=self.metrics,
            apply=self._apply_changes,
            hand_over=self._hand_over,
        )
        self.http = OpsServer(
            self.metrics,
            self._liveness,
            self._readiness,
            self._status,
            self._refresh,
            scrub=scrubber.scrub,
        )
        self._started = False
        self._stopping = False
        self._background: set[asyncio.Task[None]] = set()

    def _new_producer(self) -> AIOKafkaProducer:
        settings = self.settings
        return AIOKafkaProducer(
            **self._kafka_kwargs(),
            acks="all",
            enable_idempotence=True,
            compression_type=None if settings.compression == "none" else settings.compression,
            linger_ms=settings.linger_ms,
            max_batch_size=512 * 1024,
            max_request_size=4 * 1024 * 1024,
            request_timeout_ms=30_000,
        )

    def _kafka_kwargs(self) -> dict[str, Any]:
        """Settings for a new Kafka client (a producer rebuilt, the consumer restarted): the
        SASL password file is re-read, so a rotated Secret is picked up; registered as a
        secret."""
        kwargs = client_kwargs(self.settings)
        self._scrubber.add(kwargs.get("sasl_plain_password"))
        return kwargs

    def _read_api_key(self) -> str | None:
        """The key for the next connection (the file is re-read), registered as a secret."""
        key = self.settings.read_api_key()
        self._scrubber.add(key)
        return key

    # -- control plane ---------------------------------------------------------------

    def _apply_changes(self, changes: list[Change]) -> None:
        if self._stopping:  # reading has stopped for good; the group is being left
            return
        for change in changes:
            if isinstance(change, Follow):
                actions = self.book.follow(change.match_id)
                if self.book.is_waiting(change.match_id):
                    self.metrics.capacity_refusals.inc()
                    log.warning(
                        "match %d held back: this instance follows INGESTER_MAX_MATCHES=%d",
                        change.match_id,
                        self.settings.max_matches,
                    )
            else:
                actions = self.book.unfollow(change.match_id)
            self.pool.execute(actions)

    async def _hand_over(self) -> None:
        """Wait (at most a quarter of the session timeout) until every record received so
        far is in Kafka: the matches just given up get a new owner only after this, so its
        first record lands after our last one. The group waits for this replica up to the
        rebalance timeout (the session timeout); a quarter leaves room for noticing the
        rebalance (one heartbeat) and rejoining."""
        limit = self.settings.session_timeout_ms / 4000
        try:
            async with asyncio.timeout(limit):
                await self.buffer.acknowledged(self.buffer.put_count)
        except TimeoutError:
            log.warning(
                "matches handed over with %d records not yet acknowledged by Kafka (waited %.1fs)",
                self.buffer.unacknowledged,
                limit,
            )

    def _retire(self, match_id: int) -> None:
        """Write the ``remove`` command of a match that has been over for the grace period."""
        match = self.book.get(match_id)
        log.info(
            "match %d retired: %s for %.0fs",
            match_id,
            match.status if match else "over",
            self.settings.retire_after,
        )
        self.metrics.retired_matches.inc()
        key, value = encode_command("remove", match_id)
        record = OutRecord(
            topic=self.settings.config_topic,
            key=key,
            value=value,
            headers=[("producer", self.settings.instance_id.encode())],
            received_at=time.time(),
        )
        task = asyncio.create_task(self.buffer.put(record))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- health ----------------------------------------------------------------------

    def _liveness(self) -> list[str]:
        return [f"component {name} is not running" for name in self._supervisor.dead()]

    def _readiness(self) -> list[str]:
        problems: list[str] = []
        if not self._started:
            problems.append("starting: checking topics and schemas")
        if not self.sink.connected:
            problems.append(f"Kafka producer not connected: {self.sink.last_error or 'starting'}")
        elif self.sink.stalled:
            problems.append(f"Kafka has not acknowledged for {self.sink.waiting_for():.0f}s")
        if not self.config.replayed:
            problems.append(self.config.not_replayed_reason())
        if self.pool.auth_rejected:
            problems.append("upstream rejected the API key")
        elif len(self.book) and not self.pool.all_connected:
            states = self.pool.states()
            failure = self.pool.last_failure
            problems.append(
                f"upstream not connected ({states['connected']} of {sum(states.values())} "
                f"connections up{f'; last failure: {failure}' if failure else ''})"
            )
        return problems

    def _refresh(self) -> None:
        """Bring the gauges and the frame counts up to date (each tick and before each
        scrape)."""
        metrics = self.metrics
        self.processor.publish_counts()
        for state, count in self.book.counts().items():
            if state != "waiting":
                metrics.subscriptions.labels(state=state).set(count)
        for state, count in self.pool.states().items():
            metrics.upstream_connections.labels(state=state).set(count)
        metrics.buffered_records.set(self.buffer.unacknowledged)
        oldest = self.book.oldest_active_frame()
        metrics.last_frame_age.set(0.0 if oldest is None else time.monotonic() - oldest)
        metrics.ready.set(0 if self._readiness() else 1)

    def _status(self) -> dict[str, Any]:
        now = time.monotonic()
        matches = sorted(self.book.matches(), key=lambda m: m.match_id)
        return {
            "instance_id": self.settings.instance_id,
            "version": __version__,
            "ready": not self._readiness(),
            "problems": self._readiness(),
            "owned_partitions": self.config.assignment.partitions,
            "connections": self.pool.describe(),
            "buffered_records": self.buffer.unacknowledged,
            "matches": [m.as_status(now) for m in matches],
        }

    # -- lifecycle -------------------------------------------------------------------

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(_TICK_SECONDS)
            self.pool.execute(self.book.tick(time.monotonic()))
            self._refresh()

    async def _prepare(self) -> None:
        """Check topics and schemas, retrying until Kafka answers; then start the data path."""
        try:
            await ensure_topics(self.settings)
        except TopicError as exc:
            raise Fatal(str(exc)) from None
        await self._prepare_codecs()
        # Start-up leaves tens of thousands of long-lived objects (modules, schemas, compiled
        # writers, metrics) that every full collection walked: ~50 ms pauses at saturation.
        # Frozen, collections see only what the stream creates (~15 ms, docs/benchmarks.md).
        # Collect first, so no garbage cycle of start-up is frozen for good.
        gc.collect()
        gc.freeze()
        log.info("data path starting; %d start-up objects frozen for the GC", gc.get_freeze_count())
        self._started = True
        supervisor = self._supervisor
        supervisor.start("kafka-sink", self.sink.run)
        supervisor.start("config-consumer", self.config.run)
        supervisor.start("ticker", self._tick)

    async def run(self) -> int:
        """Serve until SIGTERM/SIGINT, then flush and return the exit code."""
        settings = self.settings
        self._supervisor = Supervisor()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await self.http.start(settings.http_host, settings.http_port)
        log.info(
            "sportrix-ingester %s started as %s: upstream %s, Kafka %s, topic %s (%s), port %s,"
            " %s loop",
            __version__,
            settings.instance_id,
            redact_url(settings.url),
            settings.kafka_bootstrap_servers,
            settings.topic,
            settings.compression
            + ("" if self._compression_level is None else f" level {self._compression_level}"),
            self.http.port,
            type(loop).__module__.split(".")[0],  # "uvloop" or "asyncio"
        )
        self._supervisor.start("prepare", self._prepare, once=True)
        stopping: asyncio.Future[Any] = asyncio.ensure_future(stop.wait())
        fatal: asyncio.Future[Any] = self._supervisor.fatal
        done, _ = await asyncio.wait({stopping, fatal}, return_when=asyncio.FIRST_COMPLETED)
        if fatal in done:
            print(f"sportrix-ingester: {self._supervisor.fatal.result()}", file=sys.stderr)
            await self._supervisor.stop()
            await self.pool.stop()
            await self.http.stop()
            return 2
        return await self._shutdown()

    async def _shutdown(self) -> int:
        """Stop reading, flush, and only then leave the group: the replicas that take this
        one's matches over start after its last record is in Kafka (or the flush timed out)."""
        self._stopping = True
        await self._supervisor.stop("ticker", "prepare")
        await self.pool.stop()  # a record waiting for room is queued all the same
        log.info("stopping: no more reading; flushing %d records", self.buffer.unacknowledged)
        flushed = True
        if self._started:
            try:
                async with asyncio.timeout(self.settings.flush_timeout):
                    await self.buffer.drained()
            except TimeoutError:
                flushed = False
        await self._supervisor.stop("config-consumer")
        await self._supervisor.stop()
        await self.http.stop()
        if not flushed:
            log.error(
                "flush timed out after %.0fs with %d records not acknowledged",
                self.settings.flush_timeout,
                self.buffer.unacknowledged,
            )
            return 1
        log.info("stopped cleanly")
        return 0


def _check_codec(name: str) -> None:
    """Refuse to start with a compression codec whose library is not installed."""
    available = getattr(aiokafka.codec, f"has_{name}", lambda: True)()
    if not available:
        raise ConfigError(f"invalid setting INGESTER_COMPRESSION: no library for {name}")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``run`` sub-command."""
    parser = subparsers.add_parser(
        "run",
        help="run the ingester daemon",
        description="Follow the matches the config topic names and produce them to Kafka.",
    )
    add_setting_flags(parser)
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    if settings.api_key is None and settings.api_key_file is None:
        raise ConfigError("missing setting SPORTRIX_API_KEY (or SPORTRIX_API_KEY_FILE)")
    scrubber = SecretScrubber()
    scrubber.add(settings.api_key.get_secret_value() if settings.api_key else None)
    with contextlib.suppress(OSError):
        scrubber.add(settings.read_api_key())
    with contextlib.suppress(OSError):
        scrubber.add(settings.read_sasl_password())
    scrubber.add_url(settings.schema_registry_url)
    configure_logging(settings.log_level, settings.log_format, scrubber)
    for handler in logging.getLogger().handlers:
        handler.addFilter(_LibraryRepeats())
    daemon = Daemon(settings, scrubber)
    if settings.event_loop == "asyncio":
        return asyncio.run(daemon.run())
    # uvloop: the same asyncio API on libuv; ~10 % less CPU per frame (docs/benchmarks.md).
    return uvloop.run(daemon.run())


class _LibraryRepeats(logging.Filter):
    """Lets an aiokafka message through once per ``window`` seconds, not once per retry.

    While a broker is down, aiokafka logs "Unable connect to node ..." and "Unable to update
    metadata ..." in a loop with no backoff (thousands of lines a second); with a wrong
    password or an untrusted CA it logs the same refusal on every attempt. The first line
    names the cause; its repeats say nothing new.
    """

    def __init__(self, window: float = 300.0) -> None:
        super().__init__()
        self._window = window
        self._last: dict[tuple[str, int, str], float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("aiokafka"):
            return True
        key = (record.name, record.levelno, record.getMessage())
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self._window:
            return False
        if len(self._last) > 1000:
            self._last.clear()
        self._last[key] = now
        return True
