"""The Kafka side: drains the :class:`RecordBuffer` into an idempotent aiokafka producer.

Records are sent in buffer order, a batch at a time, and a batch is acknowledged to the
buffer only once Kafka acknowledged every record of it. When a send fails (broker gone
past the producer's own retries, a fatal idempotence error such as the
``OutOfOrderSequenceNumber`` an aiokafka producer can get stuck on after an outage), the
producer is closed and rebuilt with backoff, and the records not acknowledged are sent
again, in their original order. Per-match order therefore holds across retries; a record
whose acknowledgement was lost may be written twice (at-least-once), never dropped. A batch
the broker refuses as too large (over the topic's ``max.message.bytes``) is split and sent
again, down to single records; only a record Kafka refuses for good on its own (too large,
corrupt) is dropped: logged, counted in ``records_dropped_total`` and skipped, so it cannot
stall every match.

The linger is adaptive: a round is handed to the producer as soon as the previous one is
answered, its batches closed so that the producer sends them at once (aiokafka keeps an
open batch for ``linger_ms``), and it holds whatever arrived while the previous round was
in flight. An idle sink sends a frame's record at once; a busy one batches as much as one
round trip to Kafka lets in. With ``linger=True`` the producer's own ``linger_ms`` applies
to every batch as well (fewer, larger requests; more lag).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    CorruptRecordException,
    InvalidTopicError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
)
from aiokafka.partitioner import DefaultPartitioner
from prometheus_client import Counter

from ingester.core.backoff import Backoff
from ingester.observe.histogram import HistogramSeries
from ingester.observe.metrics import PRODUCE_STAGES, Metrics
from ingester.pipeline import OutRecord
from ingester.produce.buffer import RecordBuffer

__all__ = ["ACK_STALL_SECONDS", "KafkaSink"]

log = logging.getLogger(__name__)

_BATCH_LIMIT = 2000
#: The broker refuses a batch as too large: its records are sent again in smaller batches.
_TOO_LARGE = (MessageSizeTooLargeError, RecordTooLargeError, RecordListTooLargeError)
#: Errors that no retry can fix for that one record; retrying would stall every match.
_UNWRITABLE = (*_TOO_LARGE, CorruptRecordException, InvalidTopicError)
_PROBE_INTERVAL = 5.0
#: A batch waiting this long for Kafka's acknowledgement is a stall: logged once, and the
#: instance is not ready. A partition leader moving (a broker's controlled restart) holds
#: acknowledgements for a few seconds and must not flap readiness; a third of the 30 s
#: request timeout leaves 20 s of warning before the first send fails.
ACK_STALL_SECONDS = 10.0
#: Records larger than this are sent alone with ``send()`` (it enforces max_request_size).
_LARGE = 128 * 1024
_PARTITIONER = DefaultPartitioner()


class KafkaSink:
    """Owns the producer; :meth:`run` drains the buffer until cancelled."""

    def __init__(
        self,
        buffer: RecordBuffer,
        metrics: Metrics,
        producer_factory: Callable[[], AIOKafkaProducer],
        rng: random.Random | None = None,
        *,
        linger: bool = False,
    ) -> None:
        self._buffer = buffer
        self._linger = linger
        self._metrics = metrics
        self._factory = producer_factory
        self._producer: AIOKafkaProducer | None = None
        self._backoff = Backoff(base=0.2, cap=10.0, reset_after=30.0, rng=rng or random.Random())
        self.connected = False
        self.last_error: str | None = None
        self._sending_since: float | None = None
        self._stall_logged = False  # the current batch's stall has been logged
        self._produce_latency = metrics.produce_latency.labels()
        self._stages = [metrics.produce_stages.labels(stage=stage) for stage in PRODUCE_STAGES]
        self._taken_at = 0.0  # wall-clock time the batch being delivered was taken
        self._by_sport: dict[str, tuple[Counter, HistogramSeries]] = {}
        self._partitions: dict[str, tuple[frozenset[int], dict[bytes, int]]] = {}
        self._limits: dict[str, int] = {}  # learned batch limits (bytes), by topic

    async def run(self) -> None:
        """Start the producer, then deliver batches forever (cancel to stop)."""
        watch = asyncio.create_task(self._watch_acknowledgements(), name="kafka-sink-watch")
        try:
            await self._ensure_producer()
            while True:
                batch = await self._take_or_probe()
                if batch:
                    await self._deliver(batch)
                    self._buffer.acknowledge(len(batch))
        finally:
            watch.cancel()
            await asyncio.gather(watch, return_exceptions=True)
            await self._close_producer()

    @property
    def stalled(self) -> bool:
        """True while a batch has waited :data:`ACK_STALL_SECONDS` or more for Kafka."""
        return self.waiting_for() >= ACK_STALL_SECONDS

    def problems(self) -> list[str]:
        """What keeps the Kafka side from being ready (empty when it is)."""
        if not self.connected:
            return [f"Kafka producer not connected: {self.last_error or 'starting'}"]
        if self.stalled:
            return [f"Kafka has not acknowledged for {self.waiting_for():.0f}s"]
        return []

    def publish_gauges(self) -> None:
        """Bring the buffered-records gauge up to date."""
        self._metrics.buffered_records.set(self._buffer.in_memory)

    async def _watch_acknowledgements(self) -> None:
        """Say once, in our own words, when Kafka stops acknowledging (a broker outage
        shows no error for up to the 30 s request timeout: the sends just wait)."""
        while True:
            await asyncio.sleep(1.0)
            if self.stalled and not self._stall_logged:
                self._stall_logged = True
                log.error(
                    "Kafka produce stalled: no acknowledgement for %.0fs (%d records buffered);"
                    " buffering and retrying",
                    self.waiting_for(),
                    self._buffer.unacknowledged,
                )

    async def _take_or_probe(self) -> list[OutRecord]:
        """The next batch; while idle, check every few seconds that Kafka still answers."""
        try:
            async with asyncio.timeout(_PROBE_INTERVAL):
                return await self._buffer.take(_BATCH_LIMIT)
        except TimeoutError:
            await self._probe()
            return []

    async def _probe(self) -> None:
        producer = self._producer
        if producer is None:
            return
        try:
            async with asyncio.timeout(_PROBE_INTERVAL):
                await producer.client.fetch_all_metadata()
        except Exception as exc:
            self._mark_down(exc)
        else:
            if not self.connected:
                log.info("Kafka reachable again")
            self.connected = True
            self.last_error = None

    def waiting_for(self) -> float:
        """Seconds the current batch has been waiting for Kafka's next acknowledgement (0:
        none); a batch sent in several rounds restarts the count with each one answered."""
        since = self._sending_since
        return 0.0 if since is None else time.monotonic() - since

    async def _deliver(self, batch: list[OutRecord]) -> None:
        pending = batch
        self._taken_at = time.time()
        self._sending_since = time.monotonic()
        try:
            while pending:
                producer = await self._ensure_producer()
                before = len(pending)
                pending, failed = await self._send(producer, pending)
                if not failed and len(pending) < before:
                    self._answered()  # a round fully answered: the stall clock starts again
                if failed:
                    await self._rebuild()
        finally:
            self._sending_since = None

    def _answered(self) -> None:
        """Kafka answered a whole round of the batch being delivered (a round with a failed
        send, one partition's leader gone say, is no answer: the stall goes on)."""
        now = time.monotonic()
        if self._stall_logged:
            self._stall_logged = False
            log.info(
                "Kafka produce resumed: acknowledged after %.1fs (%d records buffered)",
                now - (self._sending_since or now),
                self._buffer.unacknowledged,
            )
        self._sending_since = now

    async def _send(
        self, producer: AIOKafkaProducer, records: list[OutRecord]
    ) -> tuple[list[OutRecord], bool]:
        """Send ``records`` once; return those still to send, in order, and whether a send
        failed (then the producer is rebuilt before the next try).

        Records go into one ``BatchBuilder`` per partition (one future per batch, not per
        record), the partition chosen as the default partitioner does (murmur2 of the key);
        records without a key or over :data:`_LARGE` bytes go alone through ``send()``
        (which checks the size limit). A partition gets one send unit per call, so when
        one fails nothing newer of that partition went out: what is sent again keeps the
        order. A batch the broker finds too large is not dropped: the topic's batch limit
        is halved (:meth:`_shrink`) and its records are sent again in smaller batches;
        only a record too large on its own is dropped (:meth:`_drop`).
        """
        units: list[tuple[str, int | None, Any, list[OutRecord]]] = []
        error: BaseException | None = None
        try:
            units = await self._group(producer, records)
        except Exception as exc:
            error = exc
        grouped = {id(r) for _, _, _, members in units for r in members}
        retry = {id(r) for r in records if id(r) not in grouped}  # the next round's
        answers = _Answers()
        sent, error = await self._hand_over(producer, units, retry, answers, error)
        failed = False
        if error is not None:
            self._count_error(error)
            failed = True
        await answers.all_in()
        now = time.time()
        acknowledged: list[OutRecord] = []
        refused = False  # by the broker: the producer's sequence counted those records
        batched, acknowledging = self._stages[2:]
        for index, (topic, members, future, handed) in enumerate(sent):
            result = _outcome(future)
            if not isinstance(result, BaseException):
                acknowledged += members
                # Per send unit: one bisect each, whatever the number of records.
                batched.observe_repeated(handed - self._taken_at, len(members))
                acknowledging.observe_repeated(answers.at.get(index, now) - handed, len(members))
            elif isinstance(result, _UNWRITABLE):
                refused = True
                retry.update(self._refused(topic, members, result))
            else:
                self._count_error(result)
                retry.update(id(r) for r in members)
                failed = True
                error = error or result
        self._observe_waits(acknowledged)
        self._acknowledged(acknowledged, now)
        if error is not None:
            self._mark_down(error)
        elif refused:
            # The broker never wrote what it refused, but the producer's idempotence
            # sequence for that partition counted it: the next batch would be refused as
            # out of order. A fresh producer (new producer id) starts the sequence again.
            log.info("restarting the Kafka producer after a refused batch (its sequence)")
            await self._close_producer()
        return [r for r in records if id(r) in retry], failed

    async def _hand_over(
        self,
        producer: AIOKafkaProducer,
        units: list[tuple[str, int | None, Any, list[OutRecord]]],
        retry: set[int],
        answers: _Answers,
        error: BaseException | None,
    ) -> tuple[list[tuple[str, list[OutRecord], asyncio.Future[Any], float]], BaseException | None]:
        """Hand ``units`` to the producer, in order, until one fails: the units handed over
        (with the time they were) and the error, if any. The ids of records to send again
        go into ``retry``; ``answers`` follows the units' futures."""
        sent: list[tuple[str, list[OutRecord], asyncio.Future[Any], float]] = []
        for index, (topic, partition, builder, members) in enumerate(units):
            try:
                if builder is None:
                    record = members[0]
                    future = await producer.send(
                        topic, record.value, key=record.key, headers=record.headers
                    )
                else:
                    if not self._linger:
                        builder.close()  # no linger in the producer: sent with its next request
                    future = await producer.send_batch(builder, topic, partition=partition)
            except _UNWRITABLE as exc:
                retry.update(self._refused(topic, members, exc))
                continue
            except Exception as exc:
                error = exc
                retry.update(id(r) for _, _, _, rest in units[index:] for r in rest)
                break
            answers.follow(len(sent), future)
            sent.append((topic, members, future, time.time()))
        return sent, error

    def _refused(self, topic: str, members: list[OutRecord], error: BaseException) -> list[int]:
        """Kafka refused a send unit for good: the ids of its records to send again.

        A unit of several records the broker found too large is split (the topic's batch
        limit halved); a record refused alone, or a unit refused for another reason
        (corrupt, invalid topic), is dropped.
        """
        self._count_error(error)
        if len(members) > 1 and isinstance(error, _TOO_LARGE):
            self._shrink(topic, sum(_size(r) for r in members))
            return [id(r) for r in members]
        for record in members:
            self._drop(record, error)
        return []

    def _shrink(self, topic: str, refused: int) -> None:
        """Batches of ``refused`` bytes are too large for ``topic``: halve its batch limit."""
        limit = refused // 2
        if limit < self._limits.get(topic, refused):
            self._limits[topic] = limit
            log.warning(
                "topic %s refused a batch of %d bytes (over its max.message.bytes): "
                "sending its records again in batches of at most %d bytes",
                topic,
                refused,
                limit,
            )

    async def _group(
        self, producer: AIOKafkaProducer, records: list[OutRecord]
    ) -> list[tuple[str, int | None, Any, list[OutRecord]]]:
        """Send units for a prefix of each partition's ``records``:
        ``(topic, partition, builder, members)``, at most one per partition.

        ``builder`` is ``None`` for a record sent alone with ``send()``. A partition's unit
        ends when its batch is full or reaches the topic's learned limit; that partition's
        later records are left for the next round.
        """
        units: list[tuple[str, int | None, Any, list[OutRecord]]] = []
        open_batches: dict[tuple[str, int], tuple[Any, list[OutRecord]]] = {}
        full: set[tuple[str, int]] = set()
        topics: dict[str, frozenset[int]] = {}
        limits = self._limits
        for record in records:
            key = record.key
            if key is None:
                units.append((record.topic, None, None, [record]))
                continue
            partitions = topics.get(record.topic)
            if partitions is None:
                partitions = topics[record.topic] = frozenset(
                    await producer.partitions_for(record.topic)
                )
            target = (record.topic, self._partition_of(record.topic, partitions, key))
            if target in full:
                continue
            batch = open_batches.get(target)
            if len(record.value) > _LARGE:
                full.add(target)
                if batch is None:
                    units.append((*target, None, [record]))
                continue
            if batch is None:
                batch = open_batches[target] = (producer.create_batch(), [])
                units.append((*target, batch[0], batch[1]))
            elif (limit := limits.get(record.topic)) and batch[0].size() + _size(record) > limit:
                full.add(target)
                continue
            if (
                batch[0].append(key=key, value=record.value, timestamp=None, headers=record.headers)
                is None
            ):
                full.add(target)
                continue
            batch[1].append(record)
        return units

    def _partition_of(self, topic: str, partitions: frozenset[int], key: bytes) -> int:
        """The partition aiokafka's default partitioner gives ``key`` (cached per key)."""
        known = self._partitions.get(topic)
        if known is None or known[0] != partitions:
            known = self._partitions[topic] = (partitions, {})
        by_key = known[1]
        partition = by_key.get(key)
        if partition is None:
            partition = by_key[key] = _PARTITIONER(key, sorted(partitions), [])
        return partition

    def _drop(self, record: OutRecord, error: BaseException) -> None:
        """A record Kafka will never take (too large, corrupt): count it, say so, move on."""
        self._metrics.records_dropped.labels(error=type(error).__name__).inc()
        log.error(
            "record dropped: Kafka refuses it for good (%s); topic %s, key %s, %d bytes",
            type(error).__name__,
            record.topic,
            (record.key or b"-").decode(errors="replace"),
            len(record.value),
        )

    def _observe_waits(self, records: list[OutRecord]) -> None:
        """Where a round's acknowledged records spent their time before the sink took them
        (``produce_stage_seconds``: frame processing, the buffer), one call per stage; the
        sink's batching and Kafka's acknowledgement are observed per send unit."""
        taken = self._taken_at
        processed, queued = self._stages[:2]
        processed.observe_many([r.buffered_at - r.received_at for r in records])
        queued.observe_many([taken - r.buffered_at for r in records])

    def _acknowledged(self, records: list[OutRecord], now: float) -> None:
        """Count what Kafka acknowledged at ``now``: one metric update per sport and batch."""
        self._produce_latency.observe_many([max(0.0, now - r.received_at) for r in records])
        by_sport: dict[str, list[OutRecord]] = {}
        for record in records:
            if record.sport is not None:
                by_sport.setdefault(record.sport, []).append(record)
        for sport, members in by_sport.items():
            series = self._by_sport.get(sport)
            if series is None:
                metrics = self._metrics
                series = self._by_sport[sport] = (
                    metrics.records_produced.labels(sport=sport),
                    metrics.lag.labels(sport=sport),
                )
            produced, lag = series
            produced.inc(len(members))
            lag.observe_many(
                [
                    max(0.0, now - r.updated_at_ms / 1000.0)
                    for r in members
                    if r.updated_at_ms is not None
                ]
            )

    def _count_error(self, error: BaseException) -> None:
        self._metrics.produce_errors.labels(error=type(error).__name__).inc()

    def _mark_down(self, error: BaseException) -> None:
        message = f"{type(error).__name__}: {error}"
        if self.connected or self.last_error != message:
            log.error("Kafka produce failed: %s", message)
        self.connected = False
        self.last_error = message

    async def _ensure_producer(self) -> AIOKafkaProducer:
        while self._producer is None:
            producer = None
            try:
                producer = self._factory()  # may read a credentials file
                await producer.start()
            except Exception as exc:
                self._mark_down(exc)
                if producer is not None:
                    await _close_quietly(producer)
                await asyncio.sleep(self._backoff.next_delay(time.monotonic()))
                continue
            self._producer = producer
            self._backoff.connected(time.monotonic())
            self.connected = True
            self.last_error = None
            log.info("Kafka producer started")
        return self._producer

    async def _rebuild(self) -> None:
        """Throw the producer away (its idempotence state may be stuck) and back off."""
        self._metrics.producer_rebuilds.inc()
        await self._close_producer()
        delay = self._backoff.next_delay(time.monotonic())
        log.warning("rebuilding the Kafka producer in %.1fs", delay)
        await asyncio.sleep(delay)

    async def _close_producer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await _close_quietly(producer)


class _Answers:
    """The futures of one round's send units: when Kafka answered each (``at``, by index),
    and one wake-up when all are answered (one callback per unit, where ``gather`` made a
    task-like wrapper and two callbacks)."""

    __slots__ = ("_all", "_pending", "at")

    def __init__(self) -> None:
        self.at: dict[int, float] = {}
        self._pending = 0
        self._all: asyncio.Future[None] | None = None

    def follow(self, index: int, future: asyncio.Future[Any]) -> None:
        """Note when unit ``index``'s ``future`` is done."""
        self._pending += 1
        future.add_done_callback(partial(self._answered, index))

    def _answered(self, index: int, _: object) -> None:
        self.at[index] = time.time()
        self._pending -= 1
        if not self._pending and self._all is not None and not self._all.done():
            self._all.set_result(None)

    async def all_in(self) -> None:
        """Return once every followed future is done."""
        if self._pending:
            self._all = asyncio.get_running_loop().create_future()
            await self._all


def _outcome(future: asyncio.Future[Any]) -> Any:
    """A done future's result, or its exception (a cancelled one's ``CancelledError``),
    as ``gather(return_exceptions=True)`` gives them."""
    if future.cancelled():
        return asyncio.CancelledError()
    return future.exception() or future.result()


def _size(record: OutRecord) -> int:
    return len(record.value) + len(record.key or b"")


async def _close_quietly(producer: AIOKafkaProducer) -> None:
    try:
        async with asyncio.timeout(10.0):
            await producer.stop()
    except Exception as exc:
        log.debug("closing a Kafka producer failed: %s", exc)
