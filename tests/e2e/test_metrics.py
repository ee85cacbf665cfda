"""Metrics end to end: every documented family is exported and the counters add up."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.harness import Daemon, Simulator, TopicReader, Topics, add_matches, wait_for

#: The issue's metric table: family → label names.
DOCUMENTED = {
    "sportrix_ingester_upstream_connections": {"state"},
    "sportrix_ingester_upstream_reconnects_total": {"reason"},
    "sportrix_ingester_frames_total": {"sport", "op"},
    "sportrix_ingester_error_frames_total": {"code"},
    "sportrix_ingester_subscriptions": {"state"},
    "sportrix_ingester_records_produced_total": {"sport"},
    # produce_errors_total{error} appears with the first error (its label is the error
    # type): tests/resilience/test_broker_outage.py checks it during a 45 s outage.
    "sportrix_ingester_dlq_records_total": {"stage"},
    "sportrix_ingester_lag_seconds_bucket": {"sport", "le"},
    "sportrix_ingester_produce_latency_seconds_bucket": {"le"},
    "sportrix_ingester_buffered_records": set(),
    "sportrix_ingester_seq_gaps_total": {"sport"},
    "sportrix_ingester_last_frame_age_seconds": set(),
    "sportrix_ingester_config_commands_total": {"result"},
    "sportrix_ingester_config_lag_records": set(),
    "sportrix_ingester_build_info": {"version"},
}


async def test_counters_agree_with_the_simulator_and_the_topic(
    tmp_path: Path, bootstrap: str, topics: Topics, data_reader: TopicReader
) -> None:
    simulator = Simulator(tmp_path, "--update-rate", "5")
    daemon = Daemon(tmp_path, bootstrap, simulator.url, topics)
    matches = simulator.matches("soccer")[:2] + simulator.matches("cricket")[:1]
    try:
        await daemon.follow(matches)
        for drop in (1, 2):
            simulator.get("/_sim/drop?mode=close")
            await wait_for(
                lambda drop=drop: (
                    daemon.metric(  # type: ignore[misc]
                        "sportrix_ingester_upstream_reconnects_total", reason="closed"
                    )
                    >= drop
                ),
                f"reconnect {drop}",
            )
            await daemon.wait_active(matches)
        await add_matches(bootstrap, topics.config, matches, action="remove")
        await wait_for(lambda: not daemon.match_states(), "every match removed")

        def unsubscribed() -> bool:
            stats = simulator.get("/_sim/stats")["matches"]
            return all(stats[str(m)]["subscribers"] == 0 for m in matches)

        await wait_for(unsubscribed, "the simulator to see the unsubscribes")
        stats = simulator.get("/_sim/stats")
        sent = sum(
            stats["matches"][str(m)]["snapshots_sent"] + stats["matches"][str(m)]["updates_sent"]
            for m in matches
        )
        snapshots = sum(stats["matches"][str(m)]["snapshots_sent"] for m in matches)
        await wait_for(
            lambda: daemon.total("sportrix_ingester_frames_total") == sent,
            f"all {sent} frames counted",
        )
        assert daemon.total("sportrix_ingester_frames_total", op="snapshot") == snapshots
        assert snapshots >= 3 * len(matches)  # one per subscribe, one per reconnect
        skipped = daemon.metric("sportrix_ingester_skipped_frames_total", reason="not_followed")
        produced = daemon.total("sportrix_ingester_records_produced_total")
        assert produced == sent - skipped
        assert daemon.metric("sportrix_ingester_upstream_reconnects_total", reason="closed") == 2
        assert stats["drops"] == {"close": 2}
        await data_reader.poll_until(lambda rs: len(rs) == produced, f"{produced} records")
        lag_count = daemon.total("sportrix_ingester_lag_seconds_count")
        assert lag_count == produced
        assert daemon.total("sportrix_ingester_dlq_records_total") == 0
        assert daemon.metric("sportrix_ingester_buffered_records") == 0
        exported = daemon.metrics()
        for family, labels in DOCUMENTED.items():
            samples = [dict(ls) for (name, ls) in exported if name == family]
            assert samples, f"{family} is not exported"
            assert all(set(s) == labels for s in samples), (family, samples[:2])
    finally:
        assert daemon.stop() == 0
        simulator.stop()


async def test_a_connection_left_without_matches_is_read_to_its_close(
    tmp_path: Path, bootstrap: str, topics: Topics
) -> None:
    """Removing a connection's last match closes it cleanly: what the upstream wrote before
    it saw the close frame is read and counted but never produced, even for matches followed
    again meanwhile on a new connection, and nothing reconnects."""
    simulator = Simulator(tmp_path, "--update-rate", "20")
    daemon = Daemon(tmp_path, bootstrap, simulator.url, topics)
    matches = simulator.matches("soccer") + simulator.matches("cricket")

    def skipped() -> float:
        return daemon.metric("sportrix_ingester_skipped_frames_total", reason="not_followed")

    try:
        await daemon.follow(matches)
        # While the simulator stalls, its frames pile up and the daemon's close frame waits
        # unread; when the stall ends it writes the pile, then reads the close. The matches
        # are followed again meanwhile, on a new connection that takes the same index.
        simulator.get("/_sim/stall?seconds=3")
        await add_matches(bootstrap, topics.config, matches, action="remove")
        await wait_for(lambda: not daemon.match_states(), "every match removed")
        await daemon.follow(matches)
        await wait_for(
            lambda: "connection 0: closed cleanly" in daemon.output(), "the old one closed"
        )
        assert skipped() > len(matches)  # the pile was read, and none of it produced
        assert simulator.get("/_sim/stats")["connections_open"] == 1

        await add_matches(bootstrap, topics.config, matches, action="remove")
        await wait_for(
            lambda: simulator.get("/_sim/stats")["connections_open"] == 0,
            "the simulator to see the new connection closed",
        )
        stats = simulator.get("/_sim/stats")
        sent = sum(m["snapshots_sent"] + m["updates_sent"] for m in stats["matches"].values())
        await wait_for(
            lambda: daemon.total("sportrix_ingester_frames_total") == sent,
            f"all {sent} frames counted",
        )
        produced = daemon.total("sportrix_ingester_records_produced_total")
        assert produced + skipped() == sent
        assert stats["connections_total"] == 2
        assert daemon.total("sportrix_ingester_upstream_reconnects_total") == 0
        assert daemon.status()["connections"] == []
        assert "without the upstream's answer" not in daemon.output()
    finally:
        assert daemon.stop() == 0
        simulator.stop()
