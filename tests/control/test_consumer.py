"""The config consumer in a real consumer group: a rebalance hands matches over in order,
and a fault half-way through an assignment or in the read loop loses no match.

Faults are injected at the adapter boundary (:class:`FaultyConsumer` is a real aiokafka
consumer whose chosen call raises once when armed); Kafka itself is the real broker.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import suppress
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError
from prometheus_client import CollectorRegistry

from ingester.control.assignment import Change, Follow, Unfollow
from ingester.control.commands import Command, CommandRejected, parse_command
from ingester.control.consumer import ConfigConsumer
from ingester.observe.metrics import Metrics
from tests.conftest import TopicFactory
from tests.e2e.harness import add_matches, send_commands, wait_for


class FaultyConsumer(AIOKafkaConsumer):  # type: ignore[misc]
    """A real consumer; once :meth:`arm` ed, the next call of ``fault`` raises ``error``.

    Each call of ``fault`` after it fired records what its owner said then: ``(replayed,
    why not)`` in :attr:`after_fault`.
    """

    def __init__(self, fault: str, error: Exception, armed: bool, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.fault = fault
        self.error = error
        self.armed = armed
        self.fired = asyncio.Event()
        self.stopped = False
        self.owner: ConfigConsumer | None = None
        self.after_fault: list[tuple[bool, str]] = []

    def arm(self) -> None:
        self.armed = True

    def _maybe_fail(self, name: str) -> None:
        if name != self.fault:
            return
        if self.armed:
            self.armed = False
            self.fired.set()
            raise self.error
        if self.fired.is_set() and self.owner is not None:
            self.after_fault.append((self.owner.replayed, self.owner.not_replayed_reason()))

    async def start(self) -> None:
        await super().start()
        self._maybe_fail("start")

    async def end_offsets(self, partitions: Any) -> Any:
        self._maybe_fail("end_offsets")
        return await super().end_offsets(partitions)

    async def seek_to_beginning(self, *partitions: Any) -> Any:
        self._maybe_fail("seek_to_beginning")
        return await super().seek_to_beginning(*partitions)

    async def getmany(self, *partitions: Any, **kwargs: Any) -> Any:
        self._maybe_fail("getmany")
        return await super().getmany(*partitions, **kwargs)

    async def stop(self) -> None:
        self.stopped = True
        await super().stop()


class FaultyConfigConsumer(ConfigConsumer):
    """A :class:`ConfigConsumer` whose group member is a :class:`FaultyConsumer`."""

    def __init__(self, fault: str, error: Exception, armed: bool, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.member = FaultyConsumer(
            fault, error, armed, **self._client_kwargs(), **self._consumer_kwargs
        )
        self.member.owner = self

    def _new_consumer(self) -> AIOKafkaConsumer:
        return self.member

    async def _start_producer(self) -> AIOKafkaProducer:
        """The re-assert producer, whose ``send`` is the fault ``"send"``."""
        producer = await super()._start_producer()
        send = producer.send

        async def faulty_send(*args: Any, **kwargs: Any) -> Any:
            self.member._maybe_fail("send")
            return await send(*args, **kwargs)

        producer.send = faulty_send
        return producer


class Replica:
    """A :class:`ConfigConsumer` whose changes and hand-overs are recorded with their time.

    With ``fault``, its group member is a :class:`FaultyConsumer` (armed at once with
    ``armed``, else by ``replica.consumer.member.arm()``).
    """

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        group: str,
        fault: str | None = None,
        error: Exception | None = None,
        armed: bool = False,
    ) -> None:
        self.followed: set[int] = set()
        self.first_follow_at: float | None = None
        self.hand_over_started = asyncio.Event()
        self.release = asyncio.Event()
        self.hand_over_done_at: float | None = None
        self.metrics = Metrics()
        kwargs: dict[str, Any] = {
            "client_kwargs": lambda: {"bootstrap_servers": bootstrap},
            "topic": topic,
            "group_id": group,
            "session_timeout_ms": 6000,
            "metrics": self.metrics,
            "apply": self._apply,
            "hand_over": self._hand_over,
        }
        self.consumer = (
            ConfigConsumer(**kwargs)
            if fault is None
            else FaultyConfigConsumer(fault, error or KafkaTimeoutError(), armed, **kwargs)
        )
        self.task = asyncio.create_task(self.consumer.run())

    @property
    def member(self) -> FaultyConsumer:
        assert isinstance(self.consumer, FaultyConfigConsumer)
        return self.consumer.member

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
        with suppress(asyncio.CancelledError, Exception):
            await self.task


async def config_topic(
    bootstrap: str, topic_factory: TopicFactory, ids: list[int], partitions: int
) -> str:
    """A compacted config topic holding an ``add`` for each of ``ids``."""
    topic = await topic_factory(partitions=partitions, config={"cleanup.policy": "compact"})
    await add_matches(bootstrap, topic, ids)
    return topic


async def test_a_new_owner_gets_matches_only_after_the_old_one_handed_them_over(
    kafka, topic_factory
):
    ids = list(range(1, 41))
    topic = await config_topic(kafka.bootstrap_servers, topic_factory, ids, partitions=4)
    group = topic_factory.name()

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


@pytest.mark.parametrize("fault", ["end_offsets", "seek_to_beginning"])
async def test_an_assignment_that_fails_half_way_is_retried_and_not_ready_meanwhile(
    kafka, topic_factory, fault: str
):
    """On the first assignment, then on a later one (the issue's case: ``joined`` is left
    over from the generation before)."""
    ids = list(range(1, 31))
    topic = await config_topic(kafka.bootstrap_servers, topic_factory, ids, partitions=4)
    group = topic_factory.name()
    first = Replica(kafka.bootstrap_servers, topic, group, fault, armed=True)
    second: Replica | None = None

    def retried_while_not_ready() -> None:
        """The set-up was tried again, and the replica said not ready, naming the error."""
        seen = first.member.after_fault
        assert seen, "the interrupted set-up was never tried again"
        assert not any(replayed for replayed, _ in seen), seen
        assert any("assigned but not replayed (KafkaTimeoutError" in why for _, why in seen), seen
        first.member.after_fault.clear()
        first.member.fired.clear()

    try:
        await wait_for(
            lambda: first.followed == set(ids) and first.consumer.replayed,
            "the interrupted first assignment to complete",
            60,
        )
        retried_while_not_ready()
        first.member.arm()
        first.release.set()
        second = other = Replica(kafka.bootstrap_servers, topic, group)
        await asyncio.wait_for(first.member.fired.wait(), 60)

        def split() -> bool:
            union, both = first.followed | other.followed, first.followed & other.followed
            replayed = first.consumer.replayed and other.consumer.replayed
            return union == set(ids) and not both and replayed

        def shares() -> str:
            owns = sorted(tp.partition for tp in first.member.assignment())
            return (
                f"first replayed={first.consumer.replayed} owns {owns} "
                f"follows {sorted(first.followed)}; second follows {sorted(other.followed)}"
            )

        await wait_for(split, "both replicas to follow their share", 60, details=shares)
        assert first.followed
        assert other.followed
        retried_while_not_ready()
    finally:
        await first.stop()
        if second is not None:
            await second.stop()


async def test_a_crash_of_the_read_loop_hands_the_matches_over_before_leaving(kafka, topic_factory):
    ids = list(range(1, 21))
    topic = await config_topic(kafka.bootstrap_servers, topic_factory, ids, partitions=1)
    group = topic_factory.name()
    boom = RuntimeError("boom")
    replicas = [Replica(kafka.bootstrap_servers, topic, group, "getmany", boom) for _ in range(2)]
    try:
        owner = await wait_for(
            lambda: next((r for r in replicas if r.followed == set(ids)), None),
            "one replica to follow all",
            60,
        )
        (idle,) = [r for r in replicas if r is not owner]
        await wait_for(
            lambda: idle.consumer.replayed and not idle.followed, "the idle replica to join", 60
        )
        idle.first_follow_at = None  # it may have owned the partition before the owner joined
        owner.member.arm()
        await asyncio.wait_for(owner.hand_over_started.wait(), 30)
        assert owner.followed == set(), "matches are unfollowed before the hand-over"
        assert not owner.member.stopped, "the group was left before the hand-over"
        held_at = time.monotonic()
        while time.monotonic() - held_at < 1.0:
            assert idle.first_follow_at is None, "a match moved before it was handed over"
            await asyncio.sleep(0.1)
        owner.release.set()
        with pytest.raises(RuntimeError, match="boom"):
            await asyncio.wait_for(owner.task, 30)
        assert owner.member.stopped
        await wait_for(lambda: idle.followed == set(ids), "the other replica to take over", 60)
        assert owner.hand_over_done_at is not None
        assert idle.first_follow_at is not None
        assert idle.first_follow_at > owner.hand_over_done_at
    finally:
        for replica in replicas:
            await replica.stop()


async def test_a_member_that_fails_to_start_is_stopped(kafka, topic_factory):
    topic = await config_topic(kafka.bootstrap_servers, topic_factory, [1], partitions=1)
    replica = Replica(
        kafka.bootstrap_servers, topic, topic_factory.name(), "start", RuntimeError("x"), True
    )
    with pytest.raises(RuntimeError):
        await asyncio.wait_for(replica.task, 30)
    assert replica.member.stopped


async def test_rejected_records_over_followed_keys_are_answered_by_reasserts(kafka, topic_factory):
    """A bad record and a key mismatch under followed keys; the first write fails once."""
    bootstrap = kafka.bootstrap_servers
    topic = await config_topic(bootstrap, topic_factory, [5, 6], partitions=1)
    replica = Replica(bootstrap, topic, topic_factory.name(), "send", KafkaTimeoutError(), True)
    try:
        await wait_for(lambda: replica.followed == {5, 6} and replica.consumer.replayed, "5, 6")
        bad: list[tuple[bytes | None, bytes | None]] = [
            (b"5", b'{"action":"explode","match_id":5}'),
            (b"6", b'{"action":"add","match_id":7}'),
        ]
        await send_commands(bootstrap, topic, bad)
        reasserts = "sportrix_ingester_config_reasserts_total"
        await wait_for(
            lambda: replica.metrics.registry.get_sample_value(reasserts) == 2, "two re-asserts", 60
        )
        assert replica.member.fired.is_set(), "the first write failed and was retried"
        consumer = AIOKafkaConsumer(
            topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest"
        )
        await consumer.start()
        try:
            newest: dict[bytes, Command | str] = {}

            async def two_valid_commands() -> bool:
                for records in (await consumer.getmany(timeout_ms=1000)).values():
                    for record in records:
                        try:
                            newest[record.key] = parse_command(record.key, record.value)
                        except CommandRejected as exc:
                            newest[record.key] = exc.reason
                return len(newest) >= 2 and not any(isinstance(c, str) for c in newest.values())

            await wait_for(
                two_valid_commands,
                "a valid newest command of both matches",
                30,
                interval=0,
                details=lambda: f"newest records: {newest}",
            )
        finally:
            await consumer.stop()
        assert newest == {
            b"5": Command("add", 5, reasserts=0),
            b"6": Command("add", 6, reasserts=1),
        }
        assert replica.followed == {5, 6}
        assert replica.metrics.registry.get_sample_value(reasserts) == 2
    finally:
        await replica.stop()


async def test_a_reassert_producer_that_cannot_start_is_tried_once_per_round() -> None:
    """Three re-asserts due and a producer that cannot start (against a broker that does not
    answer, each try costs the whole request timeout, with the read loop held up): one try
    per round, not one per re-assert, and all three are due again for the next round."""
    starts: list[float] = []

    class Unstartable(ConfigConsumer):
        async def _start_producer(self) -> AIOKafkaProducer:
            starts.append(time.monotonic())
            raise KafkaConnectionError("Unable to bootstrap from [('127.0.0.1', 9)]")

    async def hand_over() -> None:
        pass

    consumer = Unstartable(
        client_kwargs=lambda: {"bootstrap_servers": "127.0.0.1:9"},
        topic="config",
        group_id="g",
        session_timeout_ms=6000,
        metrics=Metrics(CollectorRegistry()),
        apply=lambda changes: None,
        hand_over=hand_over,
    )
    assignment = consumer.assignment
    assignment.assign({0: 0})
    for offset, match_id in enumerate((5, 6, 7)):
        assignment.apply(0, offset, Command("add", match_id))
        assignment.rejected(0, offset + 3, match_id)
    await consumer._reassert()
    assert len(starts) == 1
    assert sorted(owed.match_id for owed in assignment.take_reasserts()) == [5, 6, 7]
