"""Control plane end to end: bad commands, replicas sharing work, restarts, retirement."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from ingester.control.commands import MAX_COMMAND_BYTES, encode_command
from sportrix_devkit.bench.processes import PYTHON
from tests.conftest import TopicFactory
from tests.e2e.harness import (
    Daemon,
    Simulator,
    TopicReader,
    Topics,
    add_matches,
    send_commands,
    wait_for,
)


@pytest.fixture
def simulator(tmp_path: Path) -> Iterator[Simulator]:
    sim = Simulator(tmp_path, "--soccer", "40", "--cricket", "20", "--update-rate", "1")
    yield sim
    sim.stop()


async def matches_list(bootstrap: str, config_topic: str, *extra: str) -> str:
    """What ``sportrix-ingester matches list`` prints, run as an operator would."""
    done = await asyncio.to_thread(
        subprocess.run,
        [*PYTHON, "matches", "list", *extra],
        env={
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "INGESTER_CONFIG_TOPIC": config_topic,
            "PATH": "/usr/bin:/bin",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout


def all_ids(simulator: Simulator) -> list[int]:
    return [m["match_id"] for m in simulator.get("/v1/matches")]


async def test_bad_commands_are_counted_and_good_ones_applied(
    tmp_path: Path, bootstrap: str, topics: Topics, simulator: Simulator
) -> None:
    good = all_ids(simulator)[:3]
    bad: list[tuple[bytes | None, bytes | None]] = [
        (b"1", b"{not json"),
        (b"2", b'{"action":"pause","match_id":2}'),
        (b"3", b'{"action":"add","match_id":-3}'),
        (b"abc", b'{"action":"add","match_id":4}'),
        (b"5", b'{"action":"add","match_id":6}'),
        (b"7", b'{"action":"add","match_id":7,"pad":"' + b"x" * MAX_COMMAND_BYTES + b'"}'),
        (b"424242", None),  # tombstone for a match nobody follows
    ]
    commands = [encode_command("add", good[0]), *bad[:4], encode_command("add", good[1])]
    commands += [*bad[4:], encode_command("add", good[2])]
    daemon = Daemon(tmp_path, bootstrap, simulator.url, topics)
    try:
        await daemon.wait_ready()
        await send_commands(bootstrap, topics.config, commands)
        await daemon.wait_active(good)
        await wait_for(
            lambda: (
                daemon.metric("sportrix_ingester_config_commands_total", result="rejected") == 6
            ),
            "six rejections",
        )
        for reason in (
            "not_json", "unknown_action", "bad_match_id", "bad_key", "key_mismatch", "oversize"
        ):  # fmt: skip
            assert daemon.metric("sportrix_ingester_config_rejections_total", reason=reason) == 1
        assert daemon.metric("sportrix_ingester_config_commands_total", result="applied") == 3
        assert daemon.metric("sportrix_ingester_config_commands_total", result="ignored") == 1
        assert set(daemon.match_states()) == set(good)
        assert daemon.alive()
    finally:
        assert daemon.stop() == 0


async def test_a_restarted_instance_resumes_the_set_with_a_snapshot_each(
    tmp_path: Path, bootstrap: str, topics: Topics, simulator: Simulator, data_reader: TopicReader
) -> None:
    ids = all_ids(simulator)[:5]
    await add_matches(bootstrap, topics.config, ids)
    await add_matches(bootstrap, topics.config, ids[:1], action="remove")
    first = Daemon(tmp_path, bootstrap, simulator.url, topics, INGESTER_INSTANCE_ID="first")
    await first.wait_active(ids[1:])
    assert set(first.match_states()) == set(ids[1:])
    assert first.stop() == 0
    second = Daemon(tmp_path, bootstrap, simulator.url, topics, INGESTER_INSTANCE_ID="second")
    try:
        await second.wait_active(ids[1:])
        assert set(second.match_states()) == set(ids[1:])

        def snapshot_each_from_second(records: list[object]) -> bool:
            return all(
                any(
                    r.headers["producer"] == b"second" and r.decoded["op"] == "snapshot"
                    for r in data_reader.by_match().get(m, [])
                )
                for m in ids[1:]
            )

        await data_reader.poll_until(snapshot_each_from_second, "a snapshot per match")
        assert ids[0] not in data_reader.by_match()
    finally:
        assert second.stop() == 0


async def test_three_replicas_share_the_matches_and_take_over_from_a_dead_one(
    tmp_path: Path, bootstrap: str, topics: Topics, simulator: Simulator, data_reader: TopicReader
) -> None:
    ids = all_ids(simulator)
    assert len(ids) == 60
    await add_matches(bootstrap, topics.config, ids)
    replicas = {
        name: Daemon(tmp_path, bootstrap, simulator.url, topics, INGESTER_INSTANCE_ID=name)
        for name in ("a", "b", "c")
    }

    def owners() -> dict[int, list[str]]:
        found: dict[int, list[str]] = {}
        for name, daemon in replicas.items():
            if daemon.alive():
                for match_id, state in daemon.match_states().items():
                    if state == "active":
                        found.setdefault(match_id, []).append(name)
        return found

    def each_owned_once() -> bool:
        found = owners()
        return set(found) == set(ids) and all(len(v) == 1 for v in found.values())

    try:
        await wait_for(
            lambda: each_owned_once() and {n[0] for n in owners().values()} == {"a", "b", "c"},
            "every match active on exactly one replica, work on all three",
            90,
        )
        before = owners()
        victim = "b"
        victims = [m for m, names in before.items() if names == [victim]]
        killed_at = time.monotonic()
        replicas[victim].signal(signal.SIGKILL)
        replicas[victim].wait(10)
        await wait_for(each_owned_once, "the dead replica's matches active on survivors", 60)
        took_over_in = time.monotonic() - killed_at
        print(f"take-over complete {took_over_in:.1f} s after the kill")
        # the bound: the group's session timeout (6 s here) plus 15 s
        assert took_over_in <= 6 + 15, f"take-over took {took_over_in:.1f} s"
        after = owners()
        assert all(after[m][0] in {"a", "c"} for m in victims)

        def handed_over(records: list[object]) -> bool:
            grouped = data_reader.by_match()
            return all(
                any(r.headers["producer"] != victim.encode() for r in grouped.get(m, [])[1:])
                for m in victims
            )

        await data_reader.poll_until(handed_over, "records of the survivors for taken-over matches")
        for match_id in victims:
            producers = [r.headers["producer"] for r in data_reader.by_match()[match_id]]
            assert b"b" in producers
            last_b = len(producers) - 1 - producers[::-1].index(b"b")
            assert all(p != b"b" for p in producers[last_b + 1 :])
        # the replica comes back and the work spreads again
        replicas[victim] = Daemon(
            tmp_path, bootstrap, simulator.url, topics, INGESTER_INSTANCE_ID=victim
        )
        await wait_for(
            lambda: each_owned_once() and victim in {n[0] for n in owners().values()},
            "the restarted replica to get work again",
            90,
        )
        taken_back = [m for m, names in owners().items() if names == [victim]]

        def taken_back_produced(records: list[object]) -> bool:
            grouped = data_reader.by_match()
            return all(grouped[m][-1].headers["producer"] == victim.encode() for m in taken_back)

        await data_reader.poll_until(taken_back_produced, "records of the restarted replica")
        # a graceful leave: SIGTERM stops reading, flushes, and only then leaves the group
        leaver = "a"
        left = [m for m, names in owners().items() if names == [leaver]]
        assert replicas[leaver].stop() == 0
        await wait_for(each_owned_once, "the leaver's matches active on the others", 60)

        def survivors_produced(records: list[object]) -> bool:
            grouped = data_reader.by_match()
            return all(grouped[m][-1].headers["producer"] != leaver.encode() for m in left)

        await data_reader.poll_until(survivors_produced, "records of the others for its matches")
        # through the kill, the take-over, the hand-back and the leave, a match's records
        # never go back in seq: an old owner stops producing before the new one starts
        for match_id, records in data_reader.by_match().items():
            seqs = [r.decoded["seq"] for r in records if r.decoded]
            assert seqs == sorted(seqs), (match_id, [r.headers["producer"] for r in records])
    finally:
        for daemon in replicas.values():
            daemon.stop()


async def test_finished_matches_are_retired_from_the_config_topic(
    tmp_path: Path, bootstrap: str, topics: Topics, simulator: Simulator
) -> None:
    ids = simulator.matches("soccer")[:2]
    daemon = Daemon(tmp_path, bootstrap, simulator.url, topics, INGESTER_RETIRE_AFTER="2")
    try:
        await add_matches(bootstrap, topics.config, ids)
        await daemon.wait_active(ids)
        simulator.get(f"/_sim/finish?match_id={ids[0]}")
        await wait_for(lambda: ids[0] not in daemon.match_states(), "the retirement", 30)
        assert daemon.metric("sportrix_ingester_retired_matches_total") == 1
        assert daemon.match_states().get(ids[1]) == "active"
        listing = await matches_list(bootstrap, topics.config)
        listed = {int(line) for line in listing.split() if line.isdigit()}
        assert listed == {ids[1]}
        live = await matches_list(
            bootstrap, topics.config, "--status-url", f"http://127.0.0.1:{daemon.http_port}"
        )
        (row,) = [line.split() for line in live.splitlines() if line.strip()][1:]
        assert row[0] == str(ids[1])
        assert row[1] == "active"
        assert row[-1] == daemon.instance_id
    finally:
        assert daemon.stop() == 0


async def test_a_config_topic_that_is_not_compacted_stops_start_up(
    tmp_path: Path, bootstrap: str, topic_factory: TopicFactory, simulator: Simulator
) -> None:
    config = await topic_factory(partitions=2, config={"cleanup.policy": "delete"})
    topics = Topics(topic_factory.name(), config, topic_factory.name())
    daemon = Daemon(tmp_path, bootstrap, simulator.url, topics)
    code = await asyncio.to_thread(daemon.wait, 60)
    assert code == 2
    last_line = daemon.output().strip().splitlines()[-1]
    assert "INGESTER_CONFIG_TOPIC" in last_line
    assert "compact" in last_line


async def read_partition(
    bootstrap: str, topic: str
) -> list[tuple[int, bytes | None, bytes | None]]:
    """Every record of partition 0 of ``topic`` now: ``(offset, key, value)``."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        end = (await consumer.end_offsets([tp]))[tp]
        records: list[tuple[int, bytes | None, bytes | None]] = []
        while await consumer.position(tp) < end:
            for batch in (await consumer.getmany(tp, timeout_ms=1000)).values():
                records.extend((r.offset, r.key, r.value) for r in batch)
        return records
    finally:
        await consumer.stop()


async def test_a_bad_command_over_a_followed_key_survives_compaction_and_a_restart(
    tmp_path: Path, bootstrap: str, topic_factory: TopicFactory, simulator: Simulator
) -> None:
    """The issue's reproduction: real compaction, then a restart; both matches followed."""
    config = await topic_factory(
        partitions=1,
        config={
            "cleanup.policy": "compact",
            "segment.ms": "500",
            "min.cleanable.dirty.ratio": "0.001",
            "delete.retention.ms": "100",
        },
    )
    topics = Topics(topic_factory.name(), config, topic_factory.name())
    first, second = all_ids(simulator)[:2]
    daemon = Daemon(tmp_path, bootstrap, simulator.url, topics, INGESTER_INSTANCE_ID="one")
    restarted: Daemon | None = None
    try:
        await daemon.follow([first, second])
        (added_at,) = [
            o for o, k, _ in await read_partition(bootstrap, config) if k == b"%d" % first
        ]
        bad = b'{"action":"explode","match_id":%d}' % first
        await send_commands(bootstrap, config, [(b"%d" % first, bad)])
        # the cleaner compacts only rolled segments: keep appending (tombstones of a match
        # nobody follows) until it removed the first add
        read: list[list[tuple[int, bytes | None, bytes | None]]] = []

        async def compacted() -> list[tuple[int, bytes | None, bytes | None]] | None:
            read.append(await read_partition(bootstrap, config))
            if all(offset != added_at for offset, _, _ in read[-1]):
                return read[-1]
            await send_commands(bootstrap, config, [(b"999999", None)])
            return None

        records = await wait_for(
            compacted,
            "the cleaner to remove the first add",
            120,
            interval=1.0,  # the next poll; segments roll after 500 ms
            details=lambda: f"records: {read[-1]}",
        )
        print("compacted:", [(o, k, v) for o, k, v in records if k != b"999999"])
        under_first = [v for _, k, v in records if k == b"%d" % first]
        reasserts = daemon.metric("sportrix_ingester_config_reasserts_total")
        assert daemon.stop() == 0
        restarted = Daemon(tmp_path, bootstrap, simulator.url, topics, INGESTER_INSTANCE_ID="two")
        await restarted.wait_active([first, second])
        assert set(restarted.match_states()) == {first, second}
        listing = await matches_list(bootstrap, config)
        assert {int(line) for line in listing.split() if line.isdigit()} == {first, second}
        assert under_first[-1] != bad, "the bad record is the newest under its key"
        assert reasserts == 1
        assert daemon.output().count(f"re-asserted add of match {first}") == 1
    finally:
        daemon.stop()
        if restarted is not None:
            assert restarted.stop() == 0
