"""The config-topic consumer (asyncio adapter around :class:`Assignment`).

The topic is consumed in a consumer group: Kafka assigns each replica some partitions,
and a replica follows exactly the matches defined there. Offsets are never committed: on
every assignment the partitions are replayed from the beginning (the topic is compacted,
so that is short), which rebuilds the set with no other state kept anywhere.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition

from ingester.control.assignment import Applied, Assignment, Change
from ingester.control.commands import CommandRejected, parse_command
from ingester.observe.metrics import Metrics

__all__ = ["ConfigConsumer"]

log = logging.getLogger(__name__)

_POLL_MS = 500
_MAX_RECORDS = 5000


class ConfigConsumer:
    """Reads commands and reports :class:`Change` lists to ``apply``; :meth:`run` forever.

    ``hand_over`` is awaited when a rebalance took matches away, before the group may give
    their partitions to another replica (eager rebalancing waits for it).
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
        self._client_kwargs = client_kwargs  # called per run: credentials are re-read
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
        """True once the group was joined and every owned partition was replayed."""
        return self.joined and self.assignment.replayed

    async def run(self) -> None:
        """Join the group and apply commands until cancelled; leaves the group on exit.

        On exit every owned partition is given up, so a restarted run starts clean.
        """
        consumer = self._consumer = AIOKafkaConsumer(
            **self._client_kwargs(), **self._consumer_kwargs
        )
        consumer.subscribe([self.topic], listener=_Listener(self))
        await consumer.start()
        try:
            while True:
                batches = await consumer.getmany(timeout_ms=_POLL_MS, max_records=_MAX_RECORDS)
                for partition, records in batches.items():
                    for record in records:
                        self._handle(partition.partition, record.offset, record.key, record.value)
                    highwater = consumer.highwater(partition)
                    if highwater is not None:
                        self._highwater[partition.partition] = highwater
                self._update_lag()
        finally:
            await consumer.stop()
            self.joined = False
            self._revoked({TopicPartition(self.topic, p) for p in self.assignment.partitions})

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
            self._apply(self.assignment.advance(partition, offset + 1))
            return
        result, changes = self.assignment.apply(partition, offset, command)
        self._metrics.config_commands.labels(result=result.value).inc()
        if result is Applied.APPLIED:
            log.debug("config: %s match %d", command.action, command.match_id)
        self._apply(changes)

    def _update_lag(self) -> None:
        owned = self.assignment.partitions
        lag = sum(max(0, self._highwater.get(p, 0) - self._position.get(p, 0)) for p in owned)
        self._metrics.config_lag.set(lag)
        self._metrics.owned_partitions.set(len(owned))

    async def _assigned(self, partitions: set[TopicPartition]) -> None:
        consumer = self._consumer
        assert consumer is not None
        numbers = sorted(tp.partition for tp in partitions)
        ends = await consumer.end_offsets(list(partitions)) if partitions else {}
        if partitions:
            await consumer.seek_to_beginning(*partitions)
        for tp in partitions:
            self._position[tp.partition] = 0
            self._highwater[tp.partition] = ends.get(tp, 0)
        log.info("config partitions assigned: %s (replaying)", numbers or "none")
        self._apply(self.assignment.assign({tp.partition: ends.get(tp, 0) for tp in partitions}))
        self.joined = True
        self._update_lag()

    def _revoked(self, partitions: set[TopicPartition]) -> bool:
        """Give up ``partitions`` and their matches; True when a match was given up."""
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
