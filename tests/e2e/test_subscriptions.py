"""Subscriptions end to end: a match moved between open connections keeps its order, a
subscribe the upstream never answers is sent again, then its connection replaced, and a
match whose snapshot is over the size limit is dead-lettered, then given up.

Each test prints what it measured (``pytest -s`` shows it)."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.e2e.harness import Daemon, Simulator, TopicReader, Topics, add_matches, wait_for


@contextlib.contextmanager
def _running(
    tmp_path: Path, bootstrap: str, topics: Topics, rate: str, **settings: str
) -> Iterator[tuple[Simulator, Daemon]]:
    """The simulator at ``rate`` updates per match per second, and a daemon on it."""
    simulator = Simulator(tmp_path, "--update-rate", rate)
    daemon = Daemon(tmp_path, bootstrap, simulator.url, topics, **settings)
    try:
        yield simulator, daemon
    finally:
        assert daemon.stop() == 0
        simulator.stop()


def _on(daemon: Daemon, match_id: int) -> dict[str, Any] | None:
    """The match's ``/status`` entry, or ``None`` while it is not followed."""
    entries = [m for m in daemon.status()["matches"] if m["match_id"] == match_id]
    return entries[0] if entries else None


async def test_a_match_moved_to_another_open_connection_keeps_its_order(
    tmp_path: Path, bootstrap: str, topics: Topics, data_reader: TopicReader
) -> None:
    """Match A is removed from connection 0 (kept open by match B) and followed again on
    connection 1, while the simulator stalls: what connection 0 still delivers of A when the
    stall ends is skipped, so A's records after the move start with the new snapshot."""
    with _running(tmp_path, bootstrap, topics, "20", INGESTER_SUBSCRIPTIONS_PER_CONNECTION="2") as (
        simulator,
        daemon,
    ):
        a, b, c, d = simulator.matches("soccer")[:4]

        def skipped() -> float:
            return daemon.metric("sportrix_ingester_skipped_frames_total", reason="not_followed")

        await daemon.follow([a, b])
        await daemon.follow([c])
        assert {m: _on(daemon, m)["connection"] for m in (a, b, c)} == {a: 0, b: 0, c: 1}  # type: ignore[index]
        # Frames pile up on both connections, and the daemon's messages wait unread.
        simulator.get("/_sim/stall?seconds=10")
        await wait_for(lambda: simulator.get("/_sim/stats")["stalls"] == 1, "the stall")
        moved_at = _on(daemon, a)["last_seq"]  # type: ignore[index]
        await add_matches(bootstrap, topics.config, [a], action="remove")
        await wait_for(lambda: _on(daemon, a) is None, "A removed")
        await add_matches(bootstrap, topics.config, [d])
        await wait_for(lambda: _on(daemon, d), "D followed (on connection 0)")
        await add_matches(bootstrap, topics.config, [a])
        await wait_for(lambda: _on(daemon, a), "A followed again")
        assert _on(daemon, a)["connection"] == 1  # type: ignore[index]
        assert _on(daemon, b)["connection"] == 0  # type: ignore[index]
        await daemon.wait_active([a, b, c, d])
        await wait_for(lambda: skipped() > 0, "connection 0's late frames of A skipped")

        simulator.get(f"/_sim/finish?match_id={a}")
        final = simulator.get(f"/_sim/matches/{a}")["seq"]
        await data_reader.poll_until(
            lambda rs: any(
                r.decoded and r.decoded["match_id"] == a and r.decoded["seq"] == final for r in rs
            ),
            f"A's last seq {final}",
        )
        seqs = [(r.decoded["op"], r.decoded["seq"]) for r in data_reader.by_match()[a]]  # type: ignore[index]
        after = [(op, seq) for op, seq in seqs if seq > moved_at]
        assert after[0][0] == "snapshot", f"A after the move starts with {after[:3]}"
        for (_, previous), (op, seq) in itertools.pairwise(seqs):
            assert seq > previous or (op == "snapshot" and seq >= previous), seqs
        assert daemon.total("sportrix_ingester_out_of_order_frames_total") == 0
        print(
            f"moved at seq {moved_at}; late frames skipped: {skipped():.0f}; A's records: "
            f"{len(seqs)}, the first after the move: {after[0]}"
        )
        assert daemon.total("sportrix_ingester_upstream_reconnects_total") == 0


async def test_an_unanswered_subscribe_is_sent_again_then_the_connection_replaced(
    tmp_path: Path, bootstrap: str, topics: Topics
) -> None:
    with _running(tmp_path, bootstrap, topics, "5", INGESTER_SUBSCRIBE_TIMEOUT="2") as (
        simulator,
        daemon,
    ):
        a, b = simulator.matches("soccer")[:2]

        def metric(name: str, **labels: str) -> float:
            return daemon.metric(f"sportrix_ingester_{name}", **labels)

        await daemon.follow([b])
        # Once: the subscribe sent again is answered, on the same connection.
        simulator.get(f"/_sim/ignore?match_id={a}&count=1")
        await daemon.follow([a], deadline=30)
        assert metric("unanswered_subscribes_total") == 1
        assert metric("upstream_reconnects_total", reason="unanswered") == 0
        # Twice: the connection is replaced, and the new one's subscribe is answered.
        await add_matches(bootstrap, topics.config, [a], action="remove")
        await wait_for(lambda: _on(daemon, a) is None, "A removed")
        simulator.get(f"/_sim/ignore?match_id={a}&count=2")
        await daemon.follow([a], deadline=30)
        await daemon.wait_active([b])
        assert metric("unanswered_subscribes_total") == 3
        assert metric("upstream_reconnects_total", reason="unanswered") == 1
        stats = simulator.get("/_sim/stats")
        assert stats["client_messages"]["ignored_subscribe"] == 3
        assert stats["connections_total"] == 2
        assert "subscribe(s) unanswered, even sent again, replacing it" in daemon.output()
        print(f"simulator: {stats['client_messages']}, connections: {stats['connections_total']}")


async def test_subscribes_waiting_for_their_turn_to_be_sent_are_not_unanswered(
    tmp_path: Path, bootstrap: str, topics: Topics
) -> None:
    """At one subscribe a second, the tenth waits 9 s in the connection's queue; the
    answer deadline (4 s) counts from when each is sent, so none is sent again and the
    connection is not replaced, though the upstream answers every one."""
    with _running(
        tmp_path,
        bootstrap,
        topics,
        "2",
        INGESTER_SUBSCRIBE_RATE="1",
        INGESTER_SUBSCRIBE_TIMEOUT="4",
    ) as (simulator, daemon):
        matches = simulator.matches("soccer")[:10]
        await daemon.follow(matches)
        unanswered = daemon.metric("sportrix_ingester_unanswered_subscribes_total")
        reconnects = daemon.total("sportrix_ingester_upstream_reconnects_total")
        print(f"unanswered: {unanswered:.0f}; reconnects: {reconnects:.0f}")
        assert unanswered == 0
        assert reconnects == 0
        assert simulator.get("/_sim/stats")["client_messages"]["subscribe"] == len(matches)


async def test_a_snapshot_over_the_size_limit_is_dead_lettered_and_given_up_after_a_few(
    tmp_path: Path, bootstrap: str, topics: Topics, dlq_reader: TopicReader
) -> None:
    """Match A's snapshot is over 4 MiB: each one closes the connection (1009) and is
    dead-lettered from its first bytes; after a few A is refused (``message_too_big``) and
    no longer subscribed, so the connection stays up for match B."""
    with _running(tmp_path, bootstrap, topics, "5") as (simulator, daemon):
        a, b = simulator.matches("soccer")[:2]
        await daemon.follow([b])
        simulator.get(f"/_sim/pad?match_id={a}&bytes={5 * 1024 * 1024}")
        await add_matches(bootstrap, topics.config, [a])
        await wait_for(lambda: daemon.match_states().get(a) == "refused", "A given up", 60)
        entry = _on(daemon, a)
        assert entry is not None
        assert entry["refused"]["code"] == "message_too_big"
        await daemon.wait_active([b])
        tries = daemon.metric(
            "sportrix_ingester_upstream_reconnects_total", reason="message_too_big"
        )
        assert tries == 3
        letters = await dlq_reader.poll_until(lambda rs: len(rs) >= 3, "3 dead letters")
        assert len(letters) == 3
        for letter in letters:
            assert letter.key == str(a).encode()
            assert letter.value is not None
            assert letter.value.startswith(b'{"op":"snapshot","match_id":%d,' % a)
            assert 0 < len(letter.value) <= 64 * 1024
            assert letter.headers["stage"] == b"decode"
            assert b"over the size limit" in letter.headers["error"]
        assert "no longer subscribed after 3 messages over the size limit" in daemon.output()
        # No loop: B keeps coming on the same connection, A is not asked for again.
        subscribes = simulator.get("/_sim/stats")["client_messages"]["subscribe"]
        frames = daemon.total("sportrix_ingester_frames_total")
        await wait_for(
            lambda: daemon.total("sportrix_ingester_frames_total") > frames + 10, "B's frames"
        )
        assert simulator.get("/_sim/stats")["client_messages"]["subscribe"] == subscribes
        assert daemon.total("sportrix_ingester_upstream_reconnects_total") == tries
        print(f"tries: {tries:.0f}; dead letters: {[len(r.value or b'') for r in letters]} bytes")
