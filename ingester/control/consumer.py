"""The config-topic consumer (asyncio adapter around :class:`Assignment`).

The topic is consumed in a consumer group: Kafka assigns each replica some partitions,
and a replica follows exactly the matches defined there. Offsets are never committed: on
every assignment the partitions are replayed from the beginning (the topic is compacted,
so that is short), which rebuilds the set with no other state kept anywhere.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition

from ingester.control.assignment import Applied, Assignment, Change, Reassert
from ingester.control.commands import CommandRejected, encode_command, parse_command
from ingester.observe.metrics import Metrics

__all__ = ["ConfigConsumer"]

log = logging.getLogger(__name__)

_POLL_MS = 500
_MAX_RECORDS = 5000
#: Seconds between two attempts to set up partitions whose assignment was interrupted.
_SET_UP_RETRY = 1.0
#: Seconds before re-asserts that could not be written are tried again.
_REASSERT_RETRY = 5.0


class ConfigConsumer:
    """Reads commands and reports :class:`Change` lists to ``apply``; :meth:`run` forever.

    ``hand_over`` is awaited when a rebalance took matches away, before the group may give
    their partitions to another replica (eager rebalancing waits for it), and when
    :meth:`run` ends, before it leaves the group.

    Setting up assigned partitions (their end offsets, a seek to the beginning) can fail
    half-way, and aiokafka only logs what its rebalance listener raises: such partitions
    stay *pending*, their records unread, :attr:`replayed` false, and the set-up is tried
    again from :meth:`run` until it completes or a rebalance takes them away.

    The :class:`Reassert` commands the assignment owes (a rejected record on top of a
    followed match's ``add``) are written into their partition by a producer of its own.
    """

    def __init__(
        self,
        client_kwargs: Callable[[], dict[str, Any]],
        topic: str,
        group_id: str,
        session_timeout_ms: int,
        metrics: Metrics,
        apply: Callable[[list[Change]], None],
        hand_over: Callable[[], Awaitable[None]],
    ) -> None:
        self.topic = topic
        self.assignment = Assignment()
        self.joined = False
        self._metrics = metrics
        self._apply = apply
        self._hand_over = hand_over
        self._highwater: dict[int, int] = {}
        self._position: dict[int, int] = {}
        self._pending: set[TopicPartition] = set()  # assigned, not set up yet
        self._set_up_error = ""
        self._set_up_at = 0.0  # when to try the pending set-up again
        self._generation = 0  # bumped by every rebalance callback
        self._client_kwargs = client_kwargs  # called per client: credentials are re-read
        self._producer: AIOKafkaProducer | None = None
        self._producer_failed = False
        self._reassert_at = 0.0  # when re-asserts that failed may be tried again
        self._consumer_kwargs: dict[str, Any] = {
            "group_id": group_id,
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest",
            "session_timeout_ms": session_timeout_ms,
            # how long the group waits for every member to rejoin (aiokafka's default, set
            # here because the hand-over wait in on_partitions_revoked is sized against it)
            "rebalance_timeout_ms": session_timeout_ms,
            "heartbeat_interval_ms": max(1000, session_timeout_ms // 4),
            "max_poll_interval_ms": 300_000,
        }
        self._consumer: AIOKafkaConsumer | None = None

    @property
    def replayed(self) -> bool:
        """True once the group was joined and every assigned partition was replayed."""
        return self.joined and not self._pending and self.assignment.replayed

    def problems(self) -> list[str]:
        """What keeps the control plane from being ready (empty when it is)."""
        return [] if self.replayed else [self.not_replayed_reason()]

    def not_replayed_reason(self) -> str:
        """Why :attr:`replayed` is false (a readiness problem)."""
        if self._pending and self._set_up_error:
            numbers = sorted(tp.partition for tp in self._pending)
            return (
                f"config partitions {numbers} assigned but not replayed "
                f"({self._set_up_error}); retrying"
            )
        return "config topic not replayed yet"

    async def run(self) -> None:
        """Join the group and apply commands until cancelled; leaves the group on exit.

        On exit, whatever the cause, every owned match is unfollowed and the hand-over is
        awaited before the group is left, so a restarted run starts clean and the next
        owner's records come after this one's.
        """
        consumer = self._consumer = self._new_consumer()
        consumer.subscribe([self.topic], listener=_Listener(self))
        try:
            await consumer.start()
            while True:
                if self._pending and time.monotonic() >= self._set_up_at:
                    await self._set_up()
                batches = await consumer.getmany(timeout_ms=_POLL_MS, max_records=_MAX_RECORDS)
                for partition, records in batches.items():
                    if partition in self._pending:
                        continue  # read again from the beginning once set up
                    for record in records:
                        self._handle(partition.partition, record.offset, record.key, record.value)
                    highwater = consumer.highwater(partition)
                    if highwater is not None:
                        self._highwater[partition.partition] = highwater
                self._update_lag()
                if time.monotonic() >= self._reassert_at:
                    await self._reassert()
        finally:
            self.joined = False
            self._pending.clear()
            try:
                owned = {TopicPartition(self.topic, p) for p in self.assignment.partitions}
                if self._revoked(owned):
                    await self._hand_over()
            finally:
                await consumer.stop()
                if self._producer is not None:
                    producer, self._producer = self._producer, None
                    await producer.stop()

    def _new_consumer(self) -> AIOKafkaConsumer:
        """The group member of one :meth:`run` (a test may wrap it to inject faults)."""
        return AIOKafkaConsumer(**self._client_kwargs(), **self._consumer_kwargs)

    def _handle(self, partition: int, offset: int, key: bytes | None, value: bytes | None) -> None:
        self._position[partition] = offset + 1
        try:
            command = parse_command(key, value)
        except CommandRejected as exc:
            self._metrics.config_commands.labels(result="rejected").inc()
            self._metrics.config_rejections.labels(reason=exc.reason).inc()
            shown = (key or b"<none>")[:32].decode("utf-8", "replace")
            log.warning(
                "config command rejected at %s[%d]@%d (key %r): %s",
                self.topic,
                partition,
                offset,
                shown,
                exc,
            )
            self._apply(self.assignment.rejected(partition, offset, exc.key_id))
            return
        result, changes = self.assignment.apply(partition, offset, command)
        self._metrics.config_commands.labels(result=result.value).inc()
        if result is Applied.APPLIED:
            log.debug("config: %s match %d", command.action, command.match_id)
        self._apply(changes)

    async def _reassert(self) -> None:
        """Write the re-asserts the assignment owes, each into its own partition.

        After a failed write the producer is replaced (it may be stuck in a fatal state). A
        producer that cannot start is tried once per round (each try can take the whole
        request timeout, holding up the read loop): the rest of the round is due again.
        """
        if self._producer_failed and self._producer is not None:
            producer, self._producer = self._producer, None
            await producer.stop()
        self._producer_failed = False
        due = self.assignment.take_reasserts()
        for index, owed in enumerate(due):
            try:
                producer = self._producer or await self._start_producer()
            except Exception as exc:
                for unsent in due[index:]:
                    self._reassert_failed(unsent, exc)
                return
            key, value = encode_command(owed.action, owed.match_id, reasserts=owed.intent)
            try:
                sent = await producer.send(self.topic, value, key=key, partition=owed.partition)
            except Exception as exc:
                self._reassert_failed(owed, exc)
                continue
            sent.add_done_callback(partial(self._reasserted, owed))

    async def _start_producer(self) -> AIOKafkaProducer:
        producer = AIOKafkaProducer(**self._client_kwargs(), acks="all", enable_idempotence=True)
        try:
            await producer.start()
        except BaseException:
            await producer.stop()
            raise
        self._producer = producer
        return producer

    def _reasserted(self, owed: Reassert, sent: asyncio.Future[Any]) -> None:
        error = sent.exception() if not sent.cancelled() else asyncio.CancelledError()
        if error is not None:
            self._reassert_failed(owed, error)
            return
        self._metrics.config_reasserts.inc()
        log.warning(
            "config: re-asserted %s of match %d (offset %d) over the record at %s[%d]@%d, "
            "so that compaction keeps it",
            owed.action,
            owed.match_id,
            owed.intent,
            self.topic,
            owed.partition,
            owed.over,
        )

    def _reassert_failed(self, owed: Reassert, error: BaseException) -> None:
        log.warning(
            "config: could not re-assert %s of match %d (%s); trying again in %.0fs",
            owed.action,
            owed.match_id,
            f"{type(error).__name__}: {error}".rstrip(": "),
            _REASSERT_RETRY,
        )
        self.assignment.reassert_failed(owed)
        self._reassert_at = time.monotonic() + _REASSERT_RETRY
        self._producer_failed = True

    def _update_lag(self) -> None:
        owned = self.assignment.partitions
        lag = sum(max(0, self._highwater.get(p, 0) - self._position.get(p, 0)) for p in owned)
        self._metrics.config_lag.set(lag)
        self._metrics.owned_partitions.set(len(owned))

    async def _assigned(self, partitions: set[TopicPartition]) -> None:
        self._generation += 1
        self._pending = set(partitions)
        self._set_up_error = ""
        self.joined = True
        await self._set_up()

    async def _set_up(self) -> None:
        """Find the pending partitions' end offsets, seek to their beginning, replay them.

        If that fails the partitions stay pending (paused) and :meth:`run` tries again; if
        a rebalance came meanwhile, the outcome belongs to an old generation and is dropped.
        """
        consumer = self._consumer
        assert consumer is not None
        generation, partitions = self._generation, set(self._pending)
        numbers = sorted(tp.partition for tp in partitions)
        try:
            ends = await consumer.end_offsets(list(partitions)) if partitions else {}
            if partitions:
                await consumer.seek_to_beginning(*partitions)
        except Exception as exc:
            if generation != self._generation:
                return
            consumer.pause(*partitions)
            self._set_up_at = time.monotonic() + _SET_UP_RETRY
            error = f"{type(exc).__name__}: {exc}".rstrip(": ")
            if error != self._set_up_error:
                log.warning(
                    "config partitions %s assigned but not replayed (%s); not ready, retrying",
                    numbers,
                    error,
                )
            self._set_up_error = error
            return
        if generation != self._generation:
            return
        consumer.resume(*partitions)
        self._pending.clear()
        self._set_up_error = ""
        for tp in partitions:
            self._position[tp.partition] = 0
            self._highwater[tp.partition] = ends.get(tp, 0)
        log.info("config partitions assigned: %s (replaying)", numbers or "none")
        self._apply(self.assignment.assign({tp.partition: ends.get(tp, 0) for tp in partitions}))
        self._update_lag()

    def _revoked(self, partitions: set[TopicPartition]) -> bool:
        """Give up ``partitions`` and their matches; True when a match was given up."""
        self._generation += 1
        self._pending -= partitions
        numbers = sorted(tp.partition for tp in partitions)
        if numbers:
            log.info("config partitions revoked: %s", numbers)
        changes = self.assignment.revoke(numbers)
        self._apply(changes)
        for number in numbers:
            self._position.pop(number, None)
            self._highwater.pop(number, None)
        return bool(changes)


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, owner: ConfigConsumer) -> None:
        self._owner = owner

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        if self._owner._revoked(revoked):
            await self._owner._hand_over()

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self._owner._assigned(assigned)
