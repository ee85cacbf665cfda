"""The config consumer in a real consumer group: a rebalance hands matches over in order."""

from __future__ import annotations

import asyncio
import time
from contextlib import suppress

from aiokafka import AIOKafkaProducer

from ingester.control.assignment import Change, Follow, Unfollow
from ingester.control.commands import encode_command
from ingester.control.consumer import ConfigConsumer
from ingester.observe.metrics import Metrics
from tests.e2e.harness import wait_for


class Replica:
    """A :class:`ConfigConsumer` whose changes and hand-overs are recorded with their time."""

    def __init__(self, bootstrap: str, topic: str, group: str) -> None:
        self.followed: set[int] = set()
        self.first_follow_at: float | None = None
        self.hand_over_started = asyncio.Event()
        self.release = asyncio.Event()
        self.hand_over_done_at: float | None = None
        self.consumer = ConfigConsumer(
            lambda: {"bootstrap_servers": bootstrap},
            topic=topic,
            group_id=group,
            session_timeout_ms=6000,
            metrics=Metrics(),
            apply=self._apply,
            hand_over=self._hand_over,
        )
        self.task = asyncio.create_task(self.consumer.run())

    def _apply(self, changes: list[Change]) -> None:
        for change in changes:
            if isinstance(change, Follow):
                self.followed.add(change.match_id)
                if self.first_follow_at is None:
                    self.first_follow_at = time.monotonic()
            elif isinstance(change, Unfollow):
                self.followed.discard(change.match_id)

    async def _hand_over(self) -> None:
        self.hand_over_started.set()
        await self.release.wait()
        self.hand_over_done_at = time.monotonic()

    async def stop(self) -> None:
        self.release.set()
        self.task.cancel()
        with suppress(asyncio.CancelledError):
            await self.task


async def test_a_new_owner_gets_matches_only_after_the_old_one_handed_them_over(
    kafka, topic_factory
):
    topic = await topic_factory(partitions=4, config={"cleanup.policy": "compact"})
    group = topic_factory.name()
    ids = list(range(1, 41))
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers)
    await producer.start()
    try:
        for match_id in ids:
            key, value = encode_command("add", match_id)
            await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()

    first = Replica(kafka.bootstrap_servers, topic, group)
    second: Replica | None = None
    try:
        await wait_for(lambda: first.followed == set(ids), "the first replica to follow all", 60)
        second = Replica(kafka.bootstrap_servers, topic, group)
        await asyncio.wait_for(first.hand_over_started.wait(), 60)
        # the group waits for the first replica: its matches cannot move yet
        held_at = time.monotonic()
        while time.monotonic() - held_at < 1.0:
            assert second.first_follow_at is None, "a match moved before it was handed over"
            await asyncio.sleep(0.1)
        first.release.set()
        await wait_for(
            lambda: (
                second.followed
                and first.followed
                and first.followed | second.followed == set(ids)
                and not first.followed & second.followed
            ),
            "the matches split between the two replicas",
            60,
        )
        assert first.hand_over_done_at is not None
        assert second.first_follow_at is not None
        assert second.first_follow_at > first.hand_over_done_at
    finally:
        await first.stop()
        if second is not None:
            await second.stop()
