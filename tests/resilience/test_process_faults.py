"""The daemon's process is stopped under load: SIGTERM (a rolling update) and kill -9 (slow)."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from tests.e2e.harness import Daemon, Simulator, TopicReader, Topics, wait_for
from tests.resilience.ledger import ledgers, read_all, received, report

FLUSH_TIMEOUT = 10.0


async def test_sigterm_under_load_flushes_everything_received_and_exits_0(
    tmp_path: Path, bootstrap: str, topics: Topics, data_reader: TopicReader
) -> None:
    simulator = Simulator(tmp_path, "--update-rate", "50")
    matches = simulator.matches("soccer")[:8]
    daemon = Daemon(
        tmp_path,
        bootstrap,
        simulator.url,
        topics,
        INGESTER_FLUSH_TIMEOUT=str(FLUSH_TIMEOUT),
        INGESTER_LINGER_MS="50",
    )
    try:
        await daemon.follow(matches)
        await wait_for(lambda: received(daemon) >= 2000, "load: 2,000 frames received")
        # What the daemon had received just before the signal: a lower bound per match.
        before = {m["match_id"]: m["last_seq"] for m in daemon.status()["matches"]}
        buffered = daemon.metric("sportrix_ingester_buffered_records")
        got = received(daemon)
        signalled = time.monotonic()
        daemon.signal(signal.SIGTERM)
        code = daemon.wait(FLUSH_TIMEOUT + 5)
        took = time.monotonic() - signalled
        output = daemon.output()
        flushing = [line for line in output.splitlines() if "flushing" in line]
        await read_all(data_reader, int(got), f"the {got:.0f} frames received before SIGTERM")
        books = ledgers(data_reader.records)
        report(
            "SIGTERM under load",
            books,
            exit_code=code,
            exit_after_s=round(took, 2),
            buffered_at_signal=buffered,
            flushing_line=flushing[-1][-80:] if flushing else None,
        )
        assert code == 0
        assert took < FLUSH_TIMEOUT
        assert "stopped cleanly" in output
        for match_id, seq in before.items():
            book = books[match_id]
            assert book.frames[0][0] == "snapshot"
            assert book.last_seq >= seq, (match_id, "a frame received before SIGTERM is missing")
            assert not book.gaps(), (match_id, book.gaps()[:3])
            assert not book.out_of_order()
            assert book.duplicates == 0
    finally:
        daemon.stop()
        simulator.stop()


async def test_kill_9_under_load_then_restart_resumes_every_match_with_a_snapshot(
    tmp_path: Path, bootstrap: str, topics: Topics, data_reader: TopicReader
) -> None:
    simulator = Simulator(tmp_path, "--update-rate", "50")
    matches = simulator.matches("soccer")[:8]
    first = Daemon(
        tmp_path,
        bootstrap,
        simulator.url,
        topics,
        INGESTER_INSTANCE_ID="first",
        INGESTER_LINGER_MS="50",
    )
    second: Daemon | None = None
    try:
        await first.follow(matches)
        await wait_for(lambda: received(first) >= 2000, "load: 2,000 frames received")
        in_flight = first.metric("sportrix_ingester_buffered_records")
        produced = first.total("sportrix_ingester_records_produced_total")
        got = received(first)
        first.signal(signal.SIGKILL)
        assert first.wait(10) == -signal.SIGKILL
        killed_at = time.monotonic()
        second = Daemon(tmp_path, bootstrap, simulator.url, topics, INGESTER_INSTANCE_ID="second")
        await second.wait_ready(90)
        await second.wait_active(matches, 60)
        resumed_after = time.monotonic() - killed_at

        def resumed(records: list[object]) -> bool:
            books = ledgers(data_reader.records)
            return all(
                any(p == b"second" for p in books[m].producers) for m in matches if m in books
            ) and set(books) == set(matches)

        await data_reader.poll_until(resumed, "records of the restarted daemon for every match")
        books = ledgers(data_reader.records)
        lost = 0
        for match_id in matches:
            book = books[match_id]
            frames = list(zip(book.frames, book.producers, strict=True))
            before = [f for f, p in frames if p == b"first"]
            after = [f for f, p in frames if p == b"second"]
            assert after[0][0] == "snapshot", (match_id, "resumes with a snapshot")
            if before:
                lost += max(0, after[0][1] - max(s for _, s in before) - 1)
        duplicates = sum(b.duplicates for b in books.values())
        first_records = sum(1 for r in data_reader.records if r.headers.get("producer") == b"first")
        report(
            "kill -9 under load, restart",
            books,
            received_by_first_at_last_scrape=got,
            acknowledged_before_kill=produced,
            first_records_in_topic=first_records,
            buffered_at_kill=in_flight,
            resumed_after_s=round(resumed_after, 1),
            seqs_skipped_until_snapshot=lost,
            duplicates=duplicates,
        )
        # Nothing the first daemon had acknowledged is lost; what it still held is, and
        # the snapshot after the restart repairs every match's state downstream.
        assert first_records >= produced
        assert duplicates == 0, "a new daemon re-sends nothing: no update twice"
        for book in books.values():
            assert not book.out_of_order(), book.out_of_order()[:3]
            for a, b in book.gaps():
                raise AssertionError(f"gap not repaired by a snapshot: {a} -> {b}")
    finally:
        first.stop()
        if second is not None:
            assert second.stop() == 0
        simulator.stop()
