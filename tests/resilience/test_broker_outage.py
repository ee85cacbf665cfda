"""Kafka goes away under the running daemon (a broker of these tests' own; slow)."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import time
from pathlib import Path

import pytest

from sportrix_devkit.localkafka import LocalKafka
from tests.e2e.harness import Daemon, Simulator, TopicReader, wait_for
from tests.resilience.conftest import outage_topics, records_flowing
from tests.resilience.ledger import (
    frames_sent,
    ledgers,
    read_all,
    received,
    report,
    rss_kib,
    sent,
    settle,
)

# One worker runs these, so their broker (``outage_kafka``) is started once per run.
pytestmark = pytest.mark.xdist_group("outage-broker")


async def _watch_readiness(
    daemon: Daemon, since: float, seconds: float
) -> list[tuple[float, list[str]]]:
    """Poll ``/readyz`` until ``seconds`` after ``since``: each 503 as (seconds in, reasons)."""
    not_ready: list[tuple[float, list[str]]] = []
    while time.monotonic() - since < seconds:
        code, body = daemon.get("/readyz")
        if code == 503:
            not_ready.append((time.monotonic() - since, json.loads(body)["reasons"]))
        await asyncio.sleep(0.5)
    return not_ready


def _sink_lines(daemon: Daemon, prefix: str) -> list[dict[str, str]]:
    """The sink's own log events whose message starts with ``prefix``."""
    events = [json.loads(line) for line in daemon.output().splitlines() if line.startswith("{")]
    return [
        e
        for e in events
        if e["logger"] == "ingester.produce.sink" and e["message"].startswith(prefix)
    ]


async def test_broker_stopped_15s_every_received_frame_lands_once_in_order(  # noqa: PLR0915
    tmp_path: Path, outage_kafka: LocalKafka
) -> None:
    bootstrap = outage_kafka.bootstrap_servers
    topics = outage_topics("outage15")
    simulator = Simulator(tmp_path, "--update-rate", "10")
    matches = simulator.matches("soccer")[:4] + simulator.matches("cricket")[:2]
    daemon = Daemon(tmp_path, bootstrap, simulator.url, topics)
    reader = TopicReader(bootstrap, topics.data)
    try:
        await daemon.follow(matches)
        await records_flowing(daemon)
        before = received(daemon)
        outage_kafka.stop()
        down_at = time.monotonic()
        not_ready = await _watch_readiness(daemon, down_at, 15)  # the fault: Kafka gone 15 s
        during = {
            "buffered": daemon.metric("sportrix_ingester_buffered_records"),
            "ready": daemon.get("/readyz")[0],
            "received_during": received(daemon) - before,
            "not_ready_after_s": round(not_ready[0][0], 1) if not_ready else None,
            "reasons": not_ready[-1][1] if not_ready else None,
        }
        outage_kafka.start_again()
        up_at = time.monotonic()
        await wait_for(
            lambda: daemon.metric("sportrix_ingester_buffered_records") < 50,
            "the backlog to drain",
            90,
        )
        drained_after = time.monotonic() - up_at
        await daemon.wait_ready(60)
        ready_after = time.monotonic() - up_at
        await settle(simulator, daemon, matches)
        sent_frames = frames_sent(simulator, matches)
        got = received(daemon)
        assert got == sum(sent_frames.values()), "no upstream fault: received == sent"
        await read_all(reader, int(got), f"{got:.0f} records")
        books = ledgers(reader.records)
        duplicates = sum(b.duplicates for b in books.values())
        report(
            "broker down 15 s",
            books,
            downtime=round(up_at - down_at, 1),
            received=got,
            **during,
            drained_after_s=round(drained_after, 1),
            ready_after_s=round(ready_after, 1),
            duplicates=duplicates,
            rebuilds=daemon.metric("sportrix_ingester_producer_rebuilds_total"),
        )
        assert during["ready"] == 503, "Kafka down: not ready"
        assert any("Kafka has not acknowledged for" in r for r in during["reasons"]), during
        # What the operator reads in the log, from the ingester itself: one line when the
        # stall is noticed, one when Kafka acknowledges again (docs/guarantees.md).
        stalled = _sink_lines(daemon, "Kafka produce stalled")
        resumed = _sink_lines(daemon, "Kafka produce resumed")
        print(f"   {stalled} {resumed}")
        assert [e["level"] for e in stalled] == ["error"], stalled
        assert [e["level"] for e in resumed] == ["info"], resumed
        assert during["received_during"] > 0, "the upstream kept being read while buffering"
        assert set(books) == set(matches)
        stats = sent(simulator, matches)
        rebuilt = daemon.metric("sportrix_ingester_producer_rebuilds_total") > 0
        for match_id, book in books.items():
            assert book.frames[0][0] == "snapshot"
            assert len(book.unique) == sent_frames[match_id], (match_id, "every frame once")
            assert book.snapshots() == stats[match_id]["snapshots_sent"]
            assert book.last_seq == stats[match_id]["last_seq"]
            assert not book.gaps(), (match_id, book.gaps()[:3])
            assert not book.out_of_order(), (match_id, book.out_of_order()[:3])
        # At-least-once: a re-send after a lost acknowledgement may repeat a record. While one
        # producer outlives the outage its idempotence makes the broker drop such repeats;
        # only a rebuilt producer (a new producer id) can write one twice, at most what was
        # in flight then (the buffer).
        if rebuilt:
            assert duplicates <= during["buffered"], duplicates
        else:
            assert duplicates == 0, "one idempotent producer throughout: exactly once"
    finally:
        await reader.close()
        if not outage_kafka.running:
            outage_kafka.start_again()
        assert daemon.stop() == 0
        simulator.stop()


async def test_broker_down_longer_than_the_buffer_pauses_reading_and_keeps_the_latest_state(  # noqa: PLR0915
    tmp_path: Path, outage_kafka: LocalKafka
) -> None:
    bootstrap = outage_kafka.bootstrap_servers
    topics = outage_topics("outage-long")
    simulator = Simulator(tmp_path, "--update-rate", "20")
    matches = simulator.matches("soccer")[:4] + simulator.matches("cricket")[:2]
    capacity = 300
    daemon = Daemon(
        tmp_path,
        bootstrap,
        simulator.url,
        topics,
        INGESTER_BUFFER_RECORDS=str(capacity),
        INGESTER_IDLE_TIMEOUT="31",
    )
    reader = TopicReader(bootstrap, topics.data)
    try:
        await daemon.follow(matches)
        await records_flowing(daemon)
        rss_before = rss_kib(daemon.proc.pid)
        outage_kafka.stop()
        down_at = time.monotonic()
        await wait_for(
            lambda: daemon.metric("sportrix_ingester_upstream_paused") == 1,
            "reading from the upstream to pause",
            30,
        )
        paused_after = time.monotonic() - down_at
        buffered, rss = [], []
        while time.monotonic() - down_at < 45:  # the fault: Kafka gone for 45 s
            buffered.append(daemon.metric("sportrix_ingester_buffered_records"))
            rss.append(rss_kib(daemon.proc.pid))
            await asyncio.sleep(0.5)
        paused_at_end = daemon.metric("sportrix_ingester_upstream_paused")
        reconnects_during = daemon.total("sportrix_ingester_upstream_reconnects_total")
        produce_errors = {
            dict(labels)["error"]: value
            for (name, labels), value in daemon.metrics().items()
            if name == "sportrix_ingester_produce_errors_total"
        }
        outage_kafka.start_again()
        up_at = time.monotonic()
        await wait_for(
            lambda: daemon.metric("sportrix_ingester_upstream_paused") == 0,
            "reading to resume",
            60,
        )
        resumed_after = time.monotonic() - up_at
        await daemon.wait_ready(60)
        await daemon.wait_active(matches, 60)
        await settle(simulator, daemon, matches, 90)
        got = received(daemon)
        await read_all(reader, 1, "records")
        stats = sent(simulator, matches)
        await reader.poll_until(
            lambda rs: (
                all(b.last_seq == stats[m]["last_seq"] for m, b in ledgers(rs).items())
                and set(ledgers(rs)) == set(matches)
            ),
            "every match's last state",
        )
        books = ledgers(reader.records)
        lost = sum(frames_sent(simulator, matches).values()) - sum(
            len(b.unique) for b in books.values()
        )
        report(
            "broker down 45 s, buffer 300",
            books,
            paused_after_s=round(paused_after, 1),
            max_buffered=max(buffered),
            rss_before_kib=rss_before,
            rss_max_kib=max(rss),
            paused_at_end=paused_at_end,
            reconnects_during=reconnects_during,
            produce_errors=produce_errors,
            resumed_after_s=round(resumed_after, 1),
            received=got,
            frames_not_in_topic=lost,
        )
        log_lines = len(daemon.output().splitlines())
        print(f"   daemon log lines over the whole test: {log_lines}")
        assert log_lines < 1000, "an outage must not flood the log (one line per retry)"
        assert max(buffered) <= capacity, "the buffer never holds more than its capacity"
        assert paused_at_end == 1, "still paused while Kafka is down"
        assert produce_errors, "failed produce attempts are counted, by error type"
        assert all(e.isidentifier() and n > 0 for e, n in produce_errors.items()), produce_errors
        assert max(rss) - rss_before < 64 * 1024, "memory stays bounded while Kafka is down"
        for match_id, book in books.items():
            assert book.last_seq == stats[match_id]["last_seq"], "latest state in the topic"
            assert not book.out_of_order(), (match_id, book.out_of_order()[:3])
            # a gap may only end at a snapshot (a replaced connection), never inside a run
            assert not book.gaps(), (match_id, book.gaps()[:3])
    finally:
        await reader.close()
        if not outage_kafka.running:
            outage_kafka.start_again()
        assert daemon.stop() == 0
        simulator.stop()


@pytest.mark.parametrize("kafka_back", [True, False], ids=["kafka-back", "flush-times-out"])
async def test_sigterm_with_a_full_buffer_produces_or_counts_every_record_received(
    tmp_path: Path, outage_kafka: LocalKafka, kafka_back: bool
) -> None:
    """SIGTERM while Kafka is down and the connections wait for room in the buffer. The
    record each waiting connection holds is flushed with the rest: with Kafka back within
    ``INGESTER_FLUSH_TIMEOUT`` the topic holds every frame received (exit 0); without, the
    exit line counts exactly the frames received that are not in the topic (exit 1).
    Reading has stopped when the `flushing N records` line is logged: ``frames_total`` is
    final then."""
    bootstrap = outage_kafka.bootstrap_servers
    topics = outage_topics("sigterm-full")
    simulator = Simulator(tmp_path, "--update-rate", "20")
    matches = simulator.matches("soccer")[:4] + simulator.matches("cricket")[:2]
    daemon = Daemon(
        tmp_path,
        bootstrap,
        simulator.url,
        topics,
        INGESTER_BUFFER_RECORDS="60",
        INGESTER_SUBSCRIPTIONS_PER_CONNECTION="2",  # 3 connections, each may hold a record
        INGESTER_FLUSH_TIMEOUT="120" if kafka_back else "3",
    )
    reader = TopicReader(bootstrap, topics.data)
    try:
        await daemon.follow(matches)
        await records_flowing(daemon)
        outage_kafka.stop()
        await wait_for(
            lambda: daemon.metric("sportrix_ingester_upstream_paused") == 1,
            "a connection to wait for room in the full buffer",
            60,
        )
        daemon.signal(signal.SIGTERM)
        await wait_for(lambda: "flushing" in daemon.output(), "reading to stop", 30)
        got = received(daemon)
        if kafka_back:
            outage_kafka.start_again()
        code = daemon.wait(150)
        if not kafka_back:
            outage_kafka.start_again()
        lines = daemon.output().splitlines()
        last = [line for line in lines if "flushing" in line or "flush timed out" in line]
        found = re.findall(r"with (\d+) records not acknowledged", last[-1])
        counted = int(found[0]) if found else 0
        await read_all(reader, int(got) - counted, f"the {got:.0f} frames received")
        books = ledgers(reader.records)
        in_topic = sum(len(b.unique) for b in books.values())
        report("SIGTERM, buffer full, Kafka down", books, received=got, exit_code=code)
        print("\n".join(f"   {line[-110:]}" for line in last))
        if kafka_back:
            assert code == 0
            assert in_topic == got, "every frame received before SIGTERM is in the topic"
        else:
            assert code == 1
            assert counted > 0
            assert in_topic + counted == got, "every frame received is produced or counted"
        broken = {m: (b.gaps()[:3], b.out_of_order()[:3]) for m, b in books.items()}
        assert not {m: v for m, v in broken.items() if v != ([], [])}, "gaps or disorder"
    finally:
        await reader.close()
        if not outage_kafka.running:
            outage_kafka.start_again()
        daemon.stop()
        simulator.stop()
