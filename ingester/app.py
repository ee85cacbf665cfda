"""``sportrix-ingester run``: the daemon; wiring every stage together, and its lifecycle.

upstream sessions → :class:`RecordFeed` (the :class:`FrameProcessor`: decode, validate,
convert, encode) → :class:`RecordBuffer` → :class:`KafkaSink`, steered by the
:class:`ConfigConsumer` through :class:`Steering` (which matches this replica follows) and
watched through :class:`Health` and the :class:`OpsServer`. Nothing here decides what a
component does: it builds them, starts them in order and stops them in order.
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
from collections.abc import Callable
from functools import partial
from typing import Any

import uvloop
from aiokafka import AIOKafkaProducer

from ingester import __version__
from ingester.codecs import build_codecs, classify_error
from ingester.control.consumer import ConfigConsumer
from ingester.control.steering import Steering
from ingester.control.topics import TopicError, ensure_topics
from ingester.observe.health import Health
from ingester.observe.http import OpsServer
from ingester.observe.logs import SecretScrubber, configure_logging
from ingester.observe.metrics import Metrics
from ingester.pipeline import FrameProcessor, OutRecord
from ingester.produce.buffer import RecordBuffer
from ingester.produce.compression import apply_compression_level
from ingester.produce.feed import RecordFeed
from ingester.produce.kafka_client import client_kwargs
from ingester.produce.sink import KafkaSink
from ingester.produce.spool.log import SegmentLog, SpoolError, SpoolFull
from ingester.produce.spool.overflow import SPOOL_AFTER_SECONDS, DiskOverflow
from ingester.settings import ConfigError, Settings, add_setting_flags, load_settings
from ingester.supervisor import Fatal, Supervisor
from ingester.upstream.pool import UpstreamPool
from ingester.upstream.session import SessionConfig, redact_url
from ingester.upstream.subscriptions import SubscriptionBook
from ingester.upstream.transport import UpstreamTransport

__all__ = ["Daemon", "register"]

log = logging.getLogger("ingester")

_TICK_SECONDS = 1.0


class Daemon:
    """The running ingester; :meth:`run` returns the process exit code."""

    def __init__(self, settings: Settings, scrubber: SecretScrubber) -> None:
        self.settings = settings
        self.metrics = metrics = Metrics()
        self._scrubber = scrubber
        self._compression_level = apply_compression_level(
            settings.compression, settings.compression_level
        )
        self.book = book = SubscriptionBook(
            per_connection=settings.subscriptions_per_connection,
            max_matches=settings.max_matches,
            refused_retry=settings.refused_retry,
            retire_after=settings.retire_after,
            subscribe_timeout=settings.subscribe_timeout,
        )
        self.spool = _open_spool(settings, metrics, book, stalled=self._kafka_stalled)
        self.buffer = RecordBuffer(settings.buffer_records, self.spool, metrics)
        metrics.buffer_capacity.set(settings.buffer_records)
        self._codecs, self._prepare_codecs = build_codecs(settings)
        metrics.prime_sports(self._codecs)
        self.processor = FrameProcessor(
            book,
            self._codecs,
            classify_error,
            metrics,
            topic=settings.topic,
            dlq_topic=settings.dlq_topic,
            instance_id=settings.instance_id,
        )
        transport = UpstreamTransport(settings)  # a bad TLS or proxy setting stops start-up
        scrubber.add_url(transport.proxy)  # proxy credentials
        sessions = SessionConfig(
            settings,
            transport,
            RecordFeed(self.processor, self.buffer),
            metrics,
            self._read_api_key,
        )
        self.pool = UpstreamPool(book, sessions, on_retire=self._retire)
        self.steering = Steering(settings, book, self.pool.execute, self.buffer, metrics)
        self.sink = KafkaSink(
            self.buffer, metrics, self._new_producer, linger=settings.linger_ms > 0
        )
        self.config = ConfigConsumer(
            self._kafka_kwargs,
            topic=settings.config_topic,
            group_id=settings.group_id,
            session_timeout_ms=settings.session_timeout_ms,
            metrics=metrics,
            apply=self.steering.apply,
            hand_over=self.steering.hand_over,
        )
        self.health = Health(
            metrics,
            settings.instance_id,
            liveness=self._liveness,
            checks=(self._starting, self.sink.problems, self.config.problems, self.pool.problems),
            gauges=(
                self.processor.publish_counts,
                self.pool.publish_gauges,
                self.sink.publish_gauges,
                *([self.spool.publish_gauges] if self.spool else []),
            ),
            sections={
                "owned_partitions": lambda: self.config.assignment.partitions,
                "connections": self.pool.describe,
                "buffered_records": lambda: self.buffer.in_memory,
                "spool": self.spool.describe if self.spool else lambda: None,
                "matches": self.pool.describe_matches,
            },
        )
        self.http = OpsServer(metrics, self.health, scrubber.scrub)
        self._started = False

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

    def _retire(self, match_id: int) -> None:
        self.steering.retire(match_id)  # the pool exists before the steering it feeds

    def _kafka_stalled(self) -> bool:
        """Kafka does not answer: no producer, or a round unanswered for a while."""
        sink = self.sink
        return not sink.connected or sink.waiting_for() >= SPOOL_AFTER_SECONDS

    def _liveness(self) -> list[str]:
        return [f"component {name} is not running" for name in self._supervisor.dead()]

    def _starting(self) -> list[str]:
        return [] if self._started else ["starting: checking topics and schemas"]

    # -- lifecycle -------------------------------------------------------------------

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(_TICK_SECONDS)
            self.pool.execute(self.book.tick(time.monotonic()))
            self.health.refresh()

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
        if self.spool is not None:
            supervisor.start("spool", partial(self.spool.run, self.buffer.wake))
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
        self.steering.stop()
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
        if self.spool is not None:
            return self._keep_in_spool(flushed)
        if not flushed:
            log.error(
                "flush timed out after %.0fs with %d records not acknowledged",
                self.settings.flush_timeout,
                self.buffer.unacknowledged,
            )
            return 1
        log.info("stopped cleanly")
        return 0

    def _keep_in_spool(self, flushed: bool) -> int:
        """Write what Kafka did not acknowledge to the spool, for the next start."""
        unacknowledged = self.buffer.unacknowledged
        try:
            kept = self.buffer.persist()
        except (OSError, SpoolFull) as exc:
            log.error(
                "%d records not acknowledged could not be kept in the spool: %s",
                unacknowledged,
                exc,
            )
            return 1
        if flushed:
            log.info("stopped cleanly")
        else:
            log.warning(
                "flush timed out after %.0fs: %d records kept in the spool, produced at the"
                " next start",
                self.settings.flush_timeout,
                kept,
            )
        return 0


def _open_spool(
    settings: Settings, metrics: Metrics, book: SubscriptionBook, stalled: Callable[[], bool]
) -> DiskOverflow | None:
    """The disk spool of ``INGESTER_SPOOL_DIR`` (``None`` when unset); a directory that
    cannot be used stops start-up (exit 2) naming the setting."""
    if settings.spool_dir is None:
        return None
    try:
        store = SegmentLog(settings.spool_dir, settings.spool_max_bytes)
    except SpoolError as exc:
        raise ConfigError(f"invalid setting INGESTER_SPOOL_DIR: {exc}") from None

    def follows(record: OutRecord) -> bool:
        key = record.key
        return key is not None and key.isdigit() and int(key) in book

    return DiskOverflow(
        store,
        metrics,
        tail_limit=max(1, settings.buffer_records // 10),  # a tenth of the memory buffer
        sync_interval=settings.spool_sync_interval,
        follows=follows,
        stalled=stalled,
    )


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
    settings.check_run()
    scrubber = SecretScrubber()
    scrubber.add(settings.api_key.get_secret_value() if settings.api_key else None)
    with contextlib.suppress(OSError):
        scrubber.add(settings.read_api_key())
    with contextlib.suppress(OSError):
        scrubber.add(settings.read_sasl_password())
    scrubber.add_url(settings.schema_registry_url)
    configure_logging(settings.log_level, settings.log_format, scrubber)
    daemon = Daemon(settings, scrubber)
    if settings.event_loop == "asyncio":
        return asyncio.run(daemon.run())
    # uvloop: the same asyncio API on libuv; ~10 % less CPU per frame (docs/benchmarks.md).
    return uvloop.run(daemon.run())
