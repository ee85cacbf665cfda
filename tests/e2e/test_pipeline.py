"""The ingest pipeline end to end: simulator → daemon (a real process) → real Kafka."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingester.convert.registry import load_converters
from tests.e2e.harness import (
    TEST_KEY,
    Daemon,
    Simulator,
    TopicReader,
    Topics,
    add_matches,
    wait_for,
)


class QuietWhileOthersFlow:
    """Condition for :meth:`TopicReader.poll_until`: ``quiet``'s record count has not grown
    for ``window`` seconds while every match in ``flowing`` gained ``growth`` records.

    Any growth of ``quiet`` restarts the window (a record still in flight), so the result
    does not depend on how fast this machine is, only on ``quiet`` falling silent while the
    pipeline demonstrably keeps delivering the others.
    """

    def __init__(
        self, reader: TopicReader, quiet: int, flowing: list[int], window: float, growth: int
    ) -> None:
        self.reader = reader
        self.quiet = quiet
        self.flowing = flowing
        self.window = window
        self.growth = growth
        self._restart()

    def _count(self, match_id: int) -> int:
        return len(self.reader.by_match().get(match_id, []))

    def _restart(self) -> None:
        self.since = time.monotonic()
        self.quiet_count = self._count(self.quiet)
        self.baseline = {m: self._count(m) for m in self.flowing}

    def __call__(self, _records: object) -> bool:
        if self._count(self.quiet) != self.quiet_count:
            self._restart()
            return False
        if time.monotonic() - self.since < self.window:
            return False
        return all(self._count(m) >= n + self.growth for m, n in self.baseline.items())


def auth_failures(daemon: Daemon) -> float:
    return daemon.metric("sportrix_ingester_upstream_reconnects_total", reason="auth_failed")


@pytest.fixture
def simulator(tmp_path: Path) -> Iterator[Simulator]:
    sim = Simulator(tmp_path, "--update-rate", "5", "--speed", "20")
    yield sim
    sim.stop()


@pytest.mark.parametrize("loop_name", ["uvloop", "asyncio"])  # INGESTER_EVENT_LOOP
async def test_records_follow_the_config_topic_and_match_the_simulator(
    tmp_path: Path,
    bootstrap: str,
    topics: Topics,
    simulator: Simulator,
    data_reader: TopicReader,
    loop_name: str,
) -> None:
    soccer = simulator.matches("soccer")[:2]
    cricket = simulator.matches("cricket")[:1]
    wanted = soccer + cricket
    daemon = Daemon(tmp_path, bootstrap, simulator.url, topics, INGESTER_EVENT_LOOP=loop_name)
    try:
        await daemon.follow(wanted)
        assert f"{loop_name} loop" in daemon.output()
        assert "(lz4 level 1)" in daemon.output()  # INGESTER_COMPRESSION_LEVEL's default

        def enough(records: list[object]) -> bool:
            counts = {m: len(rs) for m, rs in data_reader.by_match().items()}
            return all(counts.get(m, 0) >= 6 for m in wanted)

        await data_reader.poll_until(enough, "six records per match")
        grouped = data_reader.by_match()
        assert set(grouped) == set(wanted)
        for match_id, records in grouped.items():
            assert records[0].decoded is not None
            assert records[0].decoded["op"] == "snapshot"
            partitions = {r.partition for r in records}
            assert len(partitions) == 1, "a match's records share one partition"
            seqs = [r.decoded["seq"] for r in records if r.decoded]
            assert seqs == sorted(seqs)
            assert len(set(seqs)) == len(seqs), seqs
            for record in records[:4]:
                assert record.decoded is not None
                assert record.headers["sport"] == record.decoded["sport"].encode()
                assert record.headers["op"] == record.decoded["op"].encode()
                assert record.headers["producer"] == daemon.instance_id.encode()
                sent = simulator.state_at(match_id, record.decoded["seq"])
                assert record.decoded["match_id"] == sent["match_id"] == match_id
                assert record.decoded["score"] == sent["score"]
                assert record.decoded["status"] == sent["status"]
                assert record.decoded["home"] == sent["home"]
                if sent["sport"] == "soccer":
                    assert record.decoded["clock"]["minute"] == sent["clock"]["minute"]
                    assert len(record.decoded["events"]) == len(sent["events"])
                else:
                    assert record.decoded["batting"] == sent["batting"]

        # remove stops them: once the removal is applied, the few records already buffered
        # may still land, then the match's count stops growing while the others keep flowing
        removed = soccer[0]
        others = [m for m in wanted if m != removed]
        await add_matches(bootstrap, topics.config, [removed], action="remove")
        await wait_for(lambda: removed not in daemon.match_states(), "the removal to apply")
        quiet = QuietWhileOthersFlow(data_reader, removed, others, window=2.0, growth=5)
        await data_reader.poll_until(
            quiet,
            f"match {removed}'s records to stop for {quiet.window:.0f}s while "
            f"{others} each gain {quiet.growth}",
        )
        # the silence is the unsubscribe, not the match standing still: it played on upstream
        upstream = simulator.get(f"/_sim/matches/{removed}")
        last_seq = max(r.decoded["seq"] for r in data_reader.by_match()[removed] if r.decoded)
        if upstream["status"] == "live":
            assert upstream["seq"] > last_seq, (upstream["seq"], last_seq)
        assert TEST_KEY not in daemon.everything_visible()
    finally:
        assert daemon.stop() == 0, daemon.output()[-3000:]


async def test_a_sport_the_key_has_not_enabled_is_refused_visibly(
    tmp_path: Path, bootstrap: str, topics: Topics, data_reader: TopicReader
) -> None:
    simulator = Simulator(tmp_path, "--update-rate", "5", keys=("soccer-only:soccer",))
    daemon = Daemon(tmp_path, bootstrap, simulator.url, topics, api_key="soccer-only")
    try:
        cricket = simulator.matches("cricket")[0]
        soccer = simulator.matches("soccer")[0]
        await daemon.wait_ready()
        await add_matches(bootstrap, topics.config, [cricket, soccer])
        await wait_for(lambda: daemon.match_states().get(cricket) == "refused", "the refusal")
        refused = next(m for m in daemon.status()["matches"] if m["match_id"] == cricket)
        assert refused["refused"]["code"] == "sport_not_enabled"
        assert refused["refused"]["reason"]
        await wait_for(
            lambda: (
                daemon.metric("sportrix_ingester_error_frames_total", code="sport_not_enabled") >= 1
            ),
            "the error frame metric",
        )
        assert daemon.metric("sportrix_ingester_subscriptions", state="refused") == 1
        await data_reader.poll_until(lambda rs: len(rs) >= 3, "soccer records")
        assert {int(r.key or 0) for r in data_reader.records} == {soccer}
    finally:
        assert daemon.stop() == 0
        simulator.stop()


STAGE_OF_KIND = {
    "bad_json": "decode",
    "not_object": "decode",
    "no_op": "decode",
    "missing_field": "validate",
    "wrong_type": "validate",
    "unknown_sport": "convert",
}


async def test_malformed_frames_are_dead_lettered_exactly_and_neighbours_flow(
    tmp_path: Path,
    bootstrap: str,
    topics: Topics,
    data_reader: TopicReader,
    dlq_reader: TopicReader,
) -> None:
    simulator = Simulator(tmp_path, "--update-rate", "10", "--malformed-fraction", "0.3")
    daemon = Daemon(tmp_path, bootstrap, simulator.url, topics)
    try:
        matches = simulator.matches("soccer")[:2] + simulator.matches("cricket")[:1]
        await daemon.wait_ready()
        await add_matches(bootstrap, topics.config, matches)

        def injected() -> dict[str, int]:
            counts: dict[str, int] = simulator.get("/_sim/stats")["malformed_sent"]["by_kind"]
            return counts

        await wait_for(lambda: len(injected()) == 7, "every malformed kind injected", 60)
        simulator.get("/_sim/malformed?fraction=0")
        final = injected()
        expected = {stage: 0 for stage in ("decode", "validate", "convert", "encode")}
        for kind, count in final.items():
            if kind in STAGE_OF_KIND:
                expected[STAGE_OF_KIND[kind]] += count

        def dead_letters() -> dict[str, float]:
            return {
                stage: daemon.metric("sportrix_ingester_dlq_records_total", stage=stage)
                for stage in expected
            }

        await wait_for(lambda: dead_letters() == expected, f"dead letters {expected}", 30)
        assert (
            daemon.metric("sportrix_ingester_skipped_frames_total", reason="unknown_op")
            == final["unknown_op"]
        )
        await dlq_reader.poll_until(
            lambda rs: len(rs) == sum(expected.values()), "every dead letter in the topic"
        )
        for stage, count in expected.items():
            in_topic = [r for r in dlq_reader.records if r.headers["stage"] == stage.encode()]
            assert len(in_topic) == count, stage
        for record in dlq_reader.records:
            assert record.value  # the raw bytes, unchanged
            assert record.headers["error"]
            assert record.headers["received_at"]
        await data_reader.poll_until(
            lambda _: all(len(data_reader.by_match().get(m, [])) >= 5 for m in matches),
            "good records of every match",
        )
        for records in data_reader.by_match().values():
            seqs = [r.decoded["seq"] for r in records if r.decoded]
            assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "no good frame lost"
    finally:
        assert daemon.stop() == 0
        simulator.stop()


async def test_dropped_connections_are_replaced_and_snapshots_resync(
    tmp_path: Path, bootstrap: str, topics: Topics, data_reader: TopicReader
) -> None:
    simulator = Simulator(
        tmp_path, "--update-rate", "5", "--drop-every", "2", "--drop-mode", "abrupt"
    )
    daemon = Daemon(tmp_path, bootstrap, simulator.url, topics)
    try:
        matches = simulator.matches("soccer")[:2] + simulator.matches("cricket")[:1]
        await daemon.wait_ready()
        await add_matches(bootstrap, topics.config, matches)
        await data_reader.poll_until(
            lambda _: all(
                sum(1 for r in data_reader.by_match().get(m, []) if r.decoded["op"] == "snapshot")
                >= 3
                for m in matches
            ),
            "three snapshots per match (one per reconnect)",
        )
        assert daemon.metric("sportrix_ingester_upstream_reconnects_total", reason="error") >= 2
        # every record is the simulator's state at its seq
        for match_id, records in data_reader.by_match().items():
            for record in records:
                assert record.decoded is not None
                sent = simulator.state_at(match_id, record.decoded["seq"])
                assert record.decoded["score"] == sent["score"]
        # end the matches (the drops go on): the last record of each match in Kafka becomes
        # the simulator's final state
        final = {}
        for match_id in matches:
            simulator.get(f"/_sim/finish?match_id={match_id}")
            final[match_id] = simulator.get(f"/_sim/matches/{match_id}")

        def caught_up(_records: object) -> bool:
            grouped = data_reader.by_match()
            return all(
                (grouped[m][-1].decoded or {}).get("seq") == final[m]["seq"] for m in matches
            )

        await data_reader.poll_until(caught_up, "the final state of every match")
        converters = load_converters()
        for match_id in matches:
            last = data_reader.by_match()[match_id][-1].decoded
            assert last is not None
            state = final[match_id]
            assert state["status"] == last["status"] == "finished"
            converter = converters.get(state["sport"])
            assert converter is not None
            assert last == converter.convert(last["op"], state, last["received_at"])
    finally:
        assert daemon.stop() == 0
        simulator.stop()


async def test_a_rejected_key_keeps_the_daemon_up_and_secret(
    tmp_path: Path, bootstrap: str, topics: Topics, simulator: Simulator
) -> None:
    secret = "sk_live_wrong_5f0c1d2e3a4b"
    daemon = Daemon(
        tmp_path,
        bootstrap,
        simulator.url,
        topics,
        api_key=secret,
        INGESTER_AUTH_BACKOFF="1",
    )
    try:
        await add_matches(bootstrap, topics.config, simulator.matches("soccer")[:1])
        await wait_for(
            lambda: auth_failures(daemon) >= 2,
            "two rejected handshakes",
        )
        code, body = daemon.get("/readyz")
        assert code == 503
        assert b"API key" in body
        assert daemon.alive()
        rejections = daemon.output().count("API key rejected")
        assert 1 <= rejections <= auth_failures(daemon) + 1  # once per backoff, not a flood
        assert secret not in daemon.everything_visible()
    finally:
        assert daemon.stop() == 0
    assert secret not in daemon.output()


async def test_more_matches_than_one_connection_holds_are_spread(
    tmp_path: Path, bootstrap: str, topics: Topics
) -> None:
    simulator = Simulator(tmp_path, "--soccer", "30", "--cricket", "10", "--max-subscriptions", "8")
    daemon = Daemon(
        tmp_path, bootstrap, simulator.url, topics, INGESTER_SUBSCRIPTIONS_PER_CONNECTION="6"
    )
    try:
        catalogue = [m["match_id"] for m in simulator.get("/v1/matches")]
        await daemon.follow(catalogue)
        connections = daemon.status()["connections"]
        assert len(connections) == -(-len(catalogue) // 6)
        assert all(c["state"] == "connected" for c in connections)
        per_connection: dict[int, int] = {}
        for match in daemon.status()["matches"]:
            per_connection[match["connection"]] = per_connection.get(match["connection"], 0) + 1
        assert max(per_connection.values()) <= 6
        await daemon.wait_ready()
    finally:
        assert daemon.stop() == 0
        simulator.stop()
