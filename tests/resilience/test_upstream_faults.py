"""The upstream misbehaves: drops, 503 handshakes, a stall, a revoked key (slow)."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from tests.e2e.harness import Daemon, Simulator, TopicReader, Topics, wait_for
from tests.resilience.ledger import frames_sent, ledgers, read_all, received, report, sent, settle

RECONNECTS = "sportrix_ingester_upstream_reconnects_total"
REFUSED_FOR = 10  # seconds of 503 handshakes
STALL = 45  # seconds the server stalls: above the 31 s idle timeout the test sets


async def _flowing(daemon: Daemon, frames: int = 30) -> None:
    """Wait until the daemon has received ``frames`` more data frames."""
    start = received(daemon)
    await wait_for(lambda: received(daemon) >= start + frames, f"{frames} more frames", 30)


async def _checked_topic(
    simulator: Simulator,
    daemon: Daemon,
    reader: TopicReader,
    matches: list[int],
    title: str,
    **extra: object,
) -> None:
    """End the matches, then: every frame received is in the topic once, in order; the last
    state of every match is the simulator's; a skipped ``seq`` is only ever followed by a
    snapshot (frames lost with a dead connection, repaired by the re-subscribe)."""
    await _flowing(daemon)
    await settle(simulator, daemon, matches)
    got = received(daemon)
    await read_all(reader, int(got), f"{got:.0f} records")
    books = ledgers(reader.records)
    stats = sent(simulator, matches)
    report(
        title,
        books,
        sent=sum(frames_sent(simulator, matches).values()),
        received=got,
        records=len(reader.records),
        **extra,
    )
    assert len(reader.records) == got, "every frame received, exactly once"
    for match_id in matches:
        book = books[match_id]
        assert book.duplicates == 0
        assert book.last_seq == stats[match_id]["last_seq"]
        assert book.snapshots() == stats[match_id]["snapshots_sent"]
        assert not book.gaps(), (match_id, book.gaps()[:3])
        assert not book.out_of_order(), (match_id, book.out_of_order()[:3])


async def test_drops_with_and_without_a_close_frame(
    tmp_path: Path, bootstrap: str, topics: Topics, data_reader: TopicReader
) -> None:
    simulator = Simulator(tmp_path, "--update-rate", "10")
    matches = simulator.matches("soccer")[:4]
    daemon = Daemon(tmp_path, bootstrap, simulator.url, topics)
    try:
        await daemon.follow(matches)
        timings = {}
        for mode, reason in (("close", "closed"), ("abrupt", "error")):
            await _flowing(daemon)
            dropped_at = time.monotonic()
            assert simulator.get(f"/_sim/drop?mode={mode}")["dropped"] == 1
            await wait_for(
                lambda r=reason: daemon.metric(RECONNECTS, reason=r) == 1, f"a {reason} reconnect"
            )
            await wait_for(
                lambda: (
                    all(s["snapshots_sent"] >= 2 for s in sent(simulator, matches).values())
                    and daemon.get("/readyz")[0] == 200
                ),
                "re-subscribed and ready",
            )
            timings[mode] = round(time.monotonic() - dropped_at, 2)
            await daemon.wait_active(matches)
        await _checked_topic(
            simulator, daemon, data_reader, matches, "drops", resubscribed_after_s=timings
        )
        assert simulator.get("/_sim/stats")["drops"] == {"close": 1, "abrupt": 1}
    finally:
        assert daemon.stop() == 0
        simulator.stop()


async def test_503_handshakes_for_10s_then_recovery(
    tmp_path: Path, bootstrap: str, topics: Topics, data_reader: TopicReader
) -> None:
    simulator = Simulator(tmp_path, "--update-rate", "5")
    matches = simulator.matches("soccer")[:2]
    daemon = Daemon(tmp_path, bootstrap, simulator.url, topics)
    try:
        await daemon.follow(matches)
        await _flowing(daemon)
        # 10 s of refusals: several attempts at the backoff cap (the harness's 2 s) and more
        simulator.get(f"/_sim/refuse?seconds={REFUSED_FOR}&status=503")
        refused_at = time.monotonic()
        simulator.get("/_sim/drop?mode=close")
        await wait_for(
            lambda: daemon.metric(RECONNECTS, reason="handshake_failed") >= 3,
            "handshakes refused",
        )
        code, body = daemon.get("/readyz")
        assert code == 503
        assert b"upstream not connected" in body, body
        await wait_for(
            lambda: simulator.get("/_sim/stats")["faults"]["refusing_for"] == 0, "refusal over", 20
        )
        await wait_for(lambda: daemon.get("/readyz")[0] == 200, "ready again", 30)
        recovered_after = time.monotonic() - refused_at - REFUSED_FOR
        await daemon.wait_active(matches)
        stats = simulator.get("/_sim/stats")
        refused = stats["handshakes_refused"].get("service_unavailable", 0)
        failed = daemon.metric(RECONNECTS, reason="handshake_failed")
        await _checked_topic(
            simulator,
            daemon,
            data_reader,
            matches,
            f"503 for {REFUSED_FOR} s",
            handshakes_refused=refused,
            handshake_failed=failed,
            recovered_after_refusal_s=round(recovered_after, 2),
        )
        assert failed == refused, "every refused handshake is one handshake_failed reconnect"
        assert recovered_after < 5, "back within the backoff cap once the upstream accepts"
        assert daemon.alive()
    finally:
        assert daemon.stop() == 0
        simulator.stop()


async def test_a_45s_stall_is_detected_and_the_connection_replaced(
    tmp_path: Path, bootstrap: str, topics: Topics, data_reader: TopicReader
) -> None:
    """INGESTER_IDLE_TIMEOUT at 31 s (it must stay above the server's 30 s ping interval); the
    stall outlasts it by 14 s, so the replacement handshakes go unanswered for a while."""
    simulator = Simulator(tmp_path, "--update-rate", "5")
    matches = simulator.matches("soccer")[:2]
    daemon = Daemon(tmp_path, bootstrap, simulator.url, topics, INGESTER_IDLE_TIMEOUT="31")
    try:
        await daemon.follow(matches)
        await _flowing(daemon)
        simulator.get(f"/_sim/stall?seconds={STALL}")
        stalled_at = time.monotonic()
        await wait_for(lambda: daemon.metric(RECONNECTS, reason="timeout") == 1, "detected", 50)
        detected_after = time.monotonic() - stalled_at
        await wait_for(lambda: daemon.get("/readyz")[0] == 503, "not ready while stalled", 5)
        await wait_for(
            lambda: all(s["snapshots_sent"] >= 2 for s in sent(simulator, matches).values()),
            "re-subscribed after the stall",
            60,
        )
        replaced_after = time.monotonic() - stalled_at
        await daemon.wait_ready()
        await _checked_topic(
            simulator,
            daemon,
            data_reader,
            matches,
            f"{STALL} s stall",
            detected_after_s=round(detected_after, 1),
            replaced_after_s=round(replaced_after, 1),
            handshake_failed=daemon.metric(RECONNECTS, reason="handshake_failed"),
        )
        assert 25 <= detected_after <= 45, detected_after
        assert STALL - 1 < replaced_after < STALL + 10, "replaced once the server answers again"
    finally:
        assert daemon.stop() == 0
        simulator.stop()


async def test_a_revoked_key_fixed_by_rewriting_the_key_file_needs_no_restart(
    tmp_path: Path, bootstrap: str, topics: Topics, data_reader: TopicReader
) -> None:
    old_key, new_key = "sk_test_rotate_OLD_9f3K2", "sk_test_rotate_NEW_4hQ7z"
    key_file = tmp_path / "api-key"
    key_file.write_text(old_key + "\n")
    simulator = Simulator(tmp_path, "--update-rate", "5", keys=(old_key,))
    matches = simulator.matches("soccer")[:2]
    daemon = Daemon(
        tmp_path,
        bootstrap,
        simulator.url,
        topics,
        api_key=None,
        SPORTRIX_API_KEY_FILE=str(key_file),
        INGESTER_AUTH_BACKOFF="2",
    )
    try:
        await daemon.follow(matches)
        await _flowing(daemon)
        pid = daemon.proc.pid
        simulator.get(f"/_sim/keys?revoke={old_key}")
        simulator.get("/_sim/drop?mode=close")
        await wait_for(lambda: daemon.metric(RECONNECTS, reason="auth_failed") >= 3, "401s", 30)
        code, body = daemon.get("/readyz")
        assert code == 503
        assert b"upstream rejected the API key" in body, body
        await asyncio.sleep(0)  # the operator rotates the Secret:
        simulator.get(f"/_sim/keys?add={new_key}")
        key_file.write_text(new_key + "\n")
        rotated_at = time.monotonic()
        await wait_for(lambda: daemon.get("/readyz")[0] == 200, "ready with the new key", 30)
        picked_up_after = time.monotonic() - rotated_at
        await daemon.wait_active(matches)
        rejected = daemon.metric(RECONNECTS, reason="auth_failed")
        lines = [
            json.loads(line)["message"]
            for line in daemon.output().splitlines()
            if "API key rejected" in line
        ]
        await _checked_topic(
            simulator,
            daemon,
            data_reader,
            matches,
            "revoked key",
            auth_failed=rejected,
            rejection_lines=len(lines),
            picked_up_after_s=round(picked_up_after, 1),
        )
        assert daemon.proc.pid == pid, "no restart"
        assert daemon.alive()
        assert len(lines) == rejected, "one line per refused attempt (once per backoff)"
        assert picked_up_after < 10, "the next reconnect reads the file again"
        visible = daemon.everything_visible()
        assert old_key not in visible
        assert new_key not in visible
    finally:
        assert daemon.stop() == 0
        simulator.stop()
