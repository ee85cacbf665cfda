"""The disk spool through Kafka outages, a kill -9 and disk faults (issue 21; slow).

The scenario of the issue at CI scale: the simulator at 20 changes/s on 6 matches, a
300-record memory buffer, ``INGESTER_SPOOL_DIR`` in ``tmp_path``, the outage broker stopped and
started again on the same data. The guarantee is **at-least-once**: every frame the daemon
accepted is in the topic, per-match order intact; a record may appear twice only as an exact
repeat (same bytes: a re-send after a lost acknowledgement), never as a second reception.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import resource
import signal
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from sportrix_devkit.bench.ledger import MatchLedger
from sportrix_devkit.localkafka import LocalKafka
from tests.e2e.harness import Daemon, Record, Simulator, TopicReader, Topics, wait_for
from tests.resilience import ledger as accounts
from tests.resilience.conftest import outage_topics, records_flowing

# One worker runs these, one at a time: they stop and start its outage broker. A group of
# their own (not the broker-outage tests'), so that xdist may give them another worker and
# its own outage broker: the two groups' five minutes each then overlap.
pytestmark = pytest.mark.xdist_group("spool-outage-broker")

CAPACITY = 300  # INGESTER_BUFFER_RECORDS
PARTITIONS = 3  # INGESTER_TOPIC_PARTITIONS of the data topic
METRIC = "sportrix_ingester_"
SPOOL_RECORDS = METRIC + "spool_records"
SPOOL_BYTES = METRIC + "spool_bytes"
SPOOL_WRITTEN = METRIC + "spool_records_written_total"
SPOOL_WRITE_ERRORS = METRIC + "spool_write_errors_total"
PAUSED = METRIC + "upstream_paused"
PAUSES = METRIC + "upstream_pauses_total"
RECONNECTS = METRIC + "upstream_reconnects_total"
BUFFERED = METRIC + "buffered_records"
SKIPPED = METRIC + "skipped_frames_total"


def _spooling_daemon(
    tmp_path: Path,
    kafka: LocalKafka,
    simulator: Simulator,
    topics: Topics,
    **settings: str,
) -> Daemon:
    """The issue's daemon: a 300-record buffer, a spool in ``tmp_path``, and an idle
    watchdog (31 s) that would fire inside a 60 s outage if reading paused."""
    env = {
        "INGESTER_BUFFER_RECORDS": str(CAPACITY),
        "INGESTER_IDLE_TIMEOUT": "31",
        "INGESTER_SPOOL_DIR": str(tmp_path / "spool"),
        "INGESTER_TOPIC_PARTITIONS": str(PARTITIONS),
        **settings,
    }
    return Daemon(tmp_path, kafka.bootstrap_servers, simulator.url, topics, **env)


def _simulator(tmp_path: Path) -> tuple[Simulator, list[int]]:
    simulator = Simulator(tmp_path, "--update-rate", "20")
    return simulator, simulator.matches("soccer")[:4] + simulator.matches("cricket")[:2]


@dataclass
class _Peaks:
    """The highest values seen while Kafka was down."""

    paused: float = 0.0
    spool_records: float = 0.0
    spool_bytes: float = 0.0
    buffered: float = 0.0
    rss_kib: int = 0


async def _ride_out(daemon: Daemon, seconds: float) -> _Peaks:
    """The fault's duration: sample the daemon every half second for ``seconds``."""
    peaks = _Peaks()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if not daemon.alive():
            raise AssertionError(f"the daemon crashed while Kafka was down:\n{daemon.output()}")
        metrics = daemon.metrics()
        value = {name: v for (name, labels), v in metrics.items() if not labels}.get
        peaks.paused = max(peaks.paused, value(PAUSED, 0.0))
        peaks.spool_records = max(peaks.spool_records, value(SPOOL_RECORDS, 0.0))
        peaks.spool_bytes = max(peaks.spool_bytes, value(SPOOL_BYTES, 0.0))
        peaks.buffered = max(peaks.buffered, value(BUFFERED, 0.0))
        peaks.rss_kib = max(peaks.rss_kib, accounts.rss_kib(daemon.proc.pid))
        await asyncio.sleep(0.5)
    return peaks


async def _every_last_state(reader: TopicReader, simulator: Simulator, matches: list[int]) -> None:
    """Read until the topic holds every match's last ``seq`` (the simulator's), plus
    stragglers. Never waits for a count: a run that lost frames fails on what it lost."""
    stats = accounts.sent(simulator, matches)

    def complete(records: list[Record]) -> bool:
        books = accounts.ledgers(records)
        return set(books) == set(matches) and all(
            books[m].last_seq == stats[m]["last_seq"] for m in matches
        )

    await reader.poll_until(complete, "every match's last state", 90)
    await accounts.read_all(reader, 1, "stragglers")


def _missing(books: dict[int, MatchLedger], sent_frames: dict[int, int]) -> dict[int, int]:
    """Per match, frames the simulator sent that the topic does not hold."""
    return {
        m: sent_frames[m] - books[m].distinct() if m in books else sent_frames[m]
        for m in sent_frames
    }


def _not_exact_repeats(records: list[Record]) -> list[tuple[int, int]]:
    """Updates ``(match_id, seq)`` held twice with different bytes: a frame received twice,
    which at-least-once does not allow (a re-send repeats the same bytes)."""
    values: dict[tuple[int, int], set[bytes]] = defaultdict(set)
    for record in records:
        assert record.decoded is not None
        if record.decoded["op"] == "update":
            values[(int(record.key or b"0"), record.decoded["seq"])].add(record.value or b"")
    return sorted(key for key, found in values.items() if len(found) > 1)


def _broker_back(outage_kafka: LocalKafka) -> None:
    """Leave the outage broker running for the next test."""
    if not outage_kafka.running:
        outage_kafka.start_again()


async def test_broker_down_60s_with_a_spool_loses_no_frame_and_never_pauses(
    tmp_path: Path, outage_kafka: LocalKafka
) -> None:
    topics = outage_topics("spool-60")
    simulator, matches = _simulator(tmp_path)
    daemon = _spooling_daemon(tmp_path, outage_kafka, simulator, topics)
    reader = TopicReader(outage_kafka.bootstrap_servers, topics.data)
    try:
        await daemon.follow(matches)
        await records_flowing(daemon)
        reconnects_before = daemon.total(RECONNECTS)
        rss_before = accounts.rss_kib(daemon.proc.pid)
        before = accounts.received(daemon)
        outage_kafka.stop()
        peaks = await _ride_out(daemon, 60)  # the fault: Kafka gone for 60 s
        received_during = accounts.received(daemon) - before
        outage_kafka.start_again()
        up_at = time.monotonic()
        await wait_for(
            lambda: daemon.metric(SPOOL_RECORDS) == 0 and daemon.metric(BUFFERED) < CAPACITY,
            "the spool to drain",
            120,
        )
        drained_after = time.monotonic() - up_at
        rss_after = accounts.rss_kib(daemon.proc.pid)
        await daemon.wait_ready(60)
        await daemon.wait_active(matches, 60)
        await accounts.settle(simulator, daemon, matches, 90)
        reconnects = daemon.total(RECONNECTS) - reconnects_before
        written = daemon.metric(SPOOL_WRITTEN)
        pauses = daemon.metric(PAUSES)
        spool_left = daemon.metric(SPOOL_RECORDS)
        await _every_last_state(reader, simulator, matches)
        books = accounts.ledgers(reader.records)
        missing = _missing(books, accounts.frames_sent(simulator, matches))
        accounts.report(
            "broker down 60 s, buffer 300, spool",
            books,
            received_during_outage=received_during,
            frames_not_in_topic=sum(missing.values()),
            reconnects_during=reconnects,
            peak_paused=peaks.paused,
            pauses=pauses,
            spool_records_written=written,
            peak_spool_records=peaks.spool_records,
            peak_spool_bytes=peaks.spool_bytes,
            peak_buffered=peaks.buffered,
            drained_after_s=round(drained_after, 1),
            rss_before_kib=rss_before,
            rss_peak_kib=peaks.rss_kib,
            rss_after_kib=rss_after,
        )
        assert not any(missing.values()), f"frames the simulator sent, not in the topic: {missing}"
        assert not _not_exact_repeats(reader.records), "a repeat must be an exact re-send"
        for match_id, book in books.items():
            assert book.frames[0][0] == "snapshot", match_id
            assert not book.out_of_order(), (match_id, book.out_of_order()[:3])
            assert not book.gaps(), (match_id, book.gaps()[:3])
        assert reconnects == 0, "the outage caused no upstream reconnect (no idle watchdog)"
        assert peaks.paused == 0, "reading never paused because of Kafka"
        assert pauses == 0, "reading never paused because of Kafka"
        assert peaks.buffered <= CAPACITY, "the memory buffer never holds more than its capacity"
        assert written > 0, "the outage outlasted the memory buffer: records went to the spool"
        assert spool_left == 0, "the spool is empty again after the drain"
        assert peaks.rss_kib - rss_before < 50 * 1024, "RSS flat: the backlog is on disk"
        assert rss_after - rss_before < 50 * 1024, "RSS flat after the drain"
        assert daemon.alive()
    finally:
        await reader.close()
        _broker_back(outage_kafka)
        assert daemon.stop() == 0
        simulator.stop()


async def _end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    """The end offset of each of the data topic's :data:`PARTITIONS` now."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in range(PARTITIONS)])
        return {tp.partition: offset for tp, offset in ends.items()}
    finally:
        await consumer.stop()


async def test_kill_9_during_the_outage_loses_no_spooled_record(  # noqa: PLR0915
    tmp_path: Path, outage_kafka: LocalKafka
) -> None:
    """kill -9 while Kafka is down and the spool holds records; Kafka back; a new process on
    the same spool directory. (Kafka comes back first so that the topic's end offsets then
    mark exactly what was acknowledged before the outage.)

    Per match the topic then holds, in this order: the records Kafka acknowledged before the
    outage; the records of the first process's spool, produced by the second process (with
    the header ``replayed`` = ``b"1"`` while the second process did not follow the match yet,
    without it once it did: so per match a run of replayed records, then none); then the
    second process's own records, starting with the snapshot of its subscription. Lost: the
    records only the memory buffer held (the oldest of the outage, at most
    ``INGESTER_BUFFER_RECORDS``: holes before the spooled ones) and the frames on their way
    into the daemon at the kill (counted apart).
    """
    topics = outage_topics("spool-kill")
    simulator, matches = _simulator(tmp_path)
    first = _spooling_daemon(
        tmp_path, outage_kafka, simulator, topics, INGESTER_INSTANCE_ID="first"
    )
    second: Daemon | None = None
    reader = TopicReader(outage_kafka.bootstrap_servers, topics.data)
    try:
        await first.follow(matches)
        await records_flowing(first)
        outage_kafka.stop()
        peaks = await _ride_out(first, 12)  # the fault: Kafka down; the kill 12 s into it
        spooled_at_kill = first.metric(SPOOL_RECORDS)
        buffered_at_kill = first.metric(BUFFERED)
        first.signal(signal.SIGKILL)
        assert first.wait(10) == -signal.SIGKILL
        sent_to_first = accounts.frames_sent(simulator, matches)  # nobody follows them now
        outage_kafka.start_again()
        # Everything in the topic now was acknowledged before the outage: the marks split
        # the first process's live records from what the second produces from its spool.
        marks = await _end_offsets(outage_kafka.bootstrap_servers, topics.data)
        second = _spooling_daemon(
            tmp_path, outage_kafka, simulator, topics, INGESTER_INSTANCE_ID="second"
        )
        started = second
        await wait_for(lambda: bool(started.metrics()), "the restarted daemon's /metrics", 60)
        spool_at_restart = second.metric(SPOOL_RECORDS)
        await second.wait_ready(90)
        await second.wait_active(matches, 60)
        await wait_for(lambda: started.metric(SPOOL_RECORDS) == 0, "the spool to drain", 120)
        await accounts.settle(simulator, second, matches, 90)
        await _every_last_state(reader, simulator, matches)
        kinds = _classify(reader.records, marks)
        # The first process's records (acknowledged live or delivered from its spool): a
        # hole inside them is a record only its memory held; past their end, what was on its
        # way into the daemon at the kill.
        of_first = accounts.ledgers(
            [r for r in reader.records if r.headers.get("producer") == b"first"]
        )
        holes = sum(book.missing() for book in of_first.values())
        tail = sum(
            max(0, sent_to_first[m] - of_first[m].distinct() - of_first[m].missing())
            if m in of_first
            else sent_to_first[m]
            for m in matches
        )
        spooled = sum(len({f for f, k in kinds[m] if k.startswith("spooled")}) for m in matches)
        replayed = sum(1 for m in matches for _, k in kinds[m] if k == "spooled-replayed")
        books = accounts.ledgers(reader.records)
        accounts.report(
            "kill -9 during the outage, restart on the same spool",
            books,
            spool_records_at_kill=spooled_at_kill,
            buffered_at_kill=buffered_at_kill,
            spool_records_at_restart=spool_at_restart,
            peak_paused=peaks.paused,
            delivered_from_spool=spooled,
            of_which_replayed_header=replayed,
            lost_memory_only_holes=holes,
            lost_in_flight_at_kill=tail,
            records_by_kind={
                m: {k: sum(1 for _, x in kinds[m] if x == k) for k in _KINDS} for m in matches
            },
        )
        assert holes <= CAPACITY, "only what the memory buffer alone held may be lost"
        assert tail <= CAPACITY, "frames read before the kill were spooled, not lost"
        assert spooled_at_kill > 0, "the outage reached the spool before the kill"
        assert spooled >= spooled_at_kill, "every record the spool held is in the topic"
        assert not _not_exact_repeats(reader.records), "a repeat must be an exact re-send"
        for match_id in matches:
            order = [k for _, k in kinds[match_id]]
            assert order == sorted(order, key=_KINDS.index), (match_id, "spool before anything new")
            new = [f for f, k in kinds[match_id] if k == "new"]
            assert new, (match_id, "the new process follows the match again")
            assert new[0][0] == "snapshot", (
                match_id,
                "the new process starts at a snapshot",
            )
            assert not books[match_id].out_of_order(), (
                match_id,
                books[match_id].out_of_order()[:3],
            )
    finally:
        await reader.close()
        _broker_back(outage_kafka)
        first.stop()
        if second is not None:
            assert second.stop() == 0
        simulator.stop()


#: A record's place in the kill -9 test's topic, in the order a match's records must come.
_KINDS = ("live", "spooled-replayed", "spooled", "new")


def _classify(
    records: list[Record], marks: dict[int, int]
) -> dict[int, list[tuple[tuple[str, int], str]]]:
    """Per match, each record's frame and kind (:data:`_KINDS`), in topic order."""
    out: dict[int, list[tuple[tuple[str, int], str]]] = defaultdict(list)
    for record in records:
        assert record.decoded is not None
        frame = (record.decoded["op"], record.decoded["seq"])
        producer = record.headers.get("producer")
        if record.offset < marks.get(record.partition, 0):
            kind = "live"
            assert "replayed" not in record.headers, "a live record is not a replay"
        elif producer == b"first":
            kind = "spooled-replayed" if record.headers.get("replayed") == b"1" else "spooled"
        else:
            kind = "new"
            assert "replayed" not in record.headers, "the new process's own records: no header"
        out[int(record.key or b"0")].append((frame, kind))
    return out


@pytest.mark.parametrize("where", ["a-regular-file", "under-a-regular-file"])
async def test_spool_dir_not_usable_at_start_exits_2_naming_the_setting(
    tmp_path: Path, where: str
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the spool directory should be\n")
    spool = blocker if where == "a-regular-file" else blocker / "spool"
    topics = outage_topics("spool-bad-dir")
    daemon = Daemon(
        tmp_path,
        "127.0.0.1:9",  # never reached: the settings fail first
        "ws://127.0.0.1:9/v1/stream",
        topics,
        INGESTER_SPOOL_DIR=str(spool),
    )
    try:
        await wait_for(lambda: not daemon.alive(), "the daemon to refuse the spool directory", 30)
        output = daemon.output()
        print(output[-2000:])
        assert daemon.wait(1) == 2
        assert "INGESTER_SPOOL_DIR" in output
        assert "Traceback" not in output, "one clear line, not a crash"
    finally:
        daemon.stop()


FSIZE_LIMIT = 512 * 1024  # bytes any one file of the daemon may reach: the spool's segment


async def test_disk_full_during_the_outage_pauses_reading_and_loses_no_accepted_record(
    tmp_path: Path, outage_kafka: LocalKafka
) -> None:
    """The spool's file cannot grow (``RLIMIT_FSIZE``): writes fail, reading pauses
    (counted, logged once), the daemon stays up; once Kafka is back every record it accepted
    (in memory or in the spool) is in the topic. Frames the upstream sent while reading was
    paused and that never reached the daemon are the documented pause's, counted apart."""
    topics = outage_topics("spool-full")
    simulator, matches = _simulator(tmp_path)
    daemon = _spooling_daemon(tmp_path, outage_kafka, simulator, topics, INGESTER_IDLE_TIMEOUT="60")
    # No file of the daemon may grow past FSIZE_LIMIT: set on its process at once, long
    # before it opens the spool (Python ignores SIGXFSZ, so the write fails with EFBIG: the
    # disk is full for the spool). Its log, written through the inherited descriptor, stays
    # far below it.
    resource.prlimit(daemon.proc.pid, resource.RLIMIT_FSIZE, (FSIZE_LIMIT, FSIZE_LIMIT))
    reader = TopicReader(outage_kafka.bootstrap_servers, topics.data)
    try:
        await daemon.follow(matches)
        await records_flowing(daemon)
        outage_kafka.stop()
        # The fault: Kafka down until the spool is full and reading paused, then 5 s more.
        await wait_for(lambda: daemon.metric(PAUSED) == 1, "reading paused (spool full)", 60)
        peaks = await _ride_out(daemon, 5)
        write_errors = {
            dict(labels)["error"]: value
            for (name, labels), value in daemon.metrics().items()
            if name == SPOOL_WRITE_ERRORS
        }
        pauses = daemon.metric(PAUSES)
        outage_kafka.start_again()
        await wait_for(lambda: daemon.metric(PAUSED) == 0, "reading to resume", 60)
        await daemon.wait_ready(60)
        await daemon.wait_active(matches, 60)
        await accounts.settle(simulator, daemon, matches, 90)
        accepted = accounts.received(daemon) - daemon.total(SKIPPED)
        missed = sum(accounts.frames_sent(simulator, matches).values()) - accounts.received(daemon)
        await _every_last_state(reader, simulator, matches)
        delivered = len({r.value for r in reader.records})
        events = [json.loads(line) for line in daemon.output().splitlines() if line.startswith("{")]
        pause_events = [
            e
            for e in events
            if e["level"] == "warning" and e["message"].startswith("reading paused")
        ]
        pause_lines = [e["message"] for e in pause_events]
        pause_times = [datetime.fromisoformat(e["ts"]) for e in pause_events]
        pauses_in_all = daemon.metric(PAUSES)
        accounts.report(
            "disk full (RLIMIT_FSIZE 512 KiB) during an outage",
            accounts.ledgers(reader.records),
            spool_write_errors=write_errors,
            pauses=pauses,
            peak_paused=peaks.paused,
            peak_spool_bytes=peaks.spool_bytes,
            accepted=accepted,
            distinct_records_in_topic=delivered,
            missed_while_paused=missed,
            pause_lines=pause_lines,
        )
        failed = {error for error, n in write_errors.items() if n > 0}
        assert failed == {"EFBIG"}, f"the failed spool writes are counted, by error: {write_errors}"
        assert pauses > 0, "a full spool pauses reading"
        assert peaks.paused == 1, "reading stays paused while Kafka is down and the spool full"
        # After the outage the spool refuses until it is drained, so reading may pause
        # again while it drains: every pause counted, a line at most once a minute.
        assert 1 <= len(pause_lines) <= pauses_in_all, pause_lines
        gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(pause_times)]
        assert all(gap >= 60 for gap in gaps), f"pause lines a minute apart at least: {gaps}"
        assert delivered == accepted, "every record accepted (memory or spool) is in the topic"
        for match_id, book in accounts.ledgers(reader.records).items():
            assert not book.out_of_order(), (match_id, book.out_of_order()[:3])
        assert daemon.alive(), "no crash"
    finally:
        await reader.close()
        _broker_back(outage_kafka)
        assert daemon.stop() == 0
        simulator.stop()


async def test_sigterm_during_the_outage_keeps_every_record_in_the_spool(
    tmp_path: Path, outage_kafka: LocalKafka
) -> None:
    """SIGTERM while Kafka is down (a rolling update during a maintenance window): the
    daemon stops reading, waits ``INGESTER_FLUSH_TIMEOUT``, writes what Kafka did not take
    (memory and spool, in order) to the spool and exits 0; the next process on the same
    spool delivers every frame the first received, before its own."""
    topics = outage_topics("spool-term")
    simulator, matches = _simulator(tmp_path)
    first = _spooling_daemon(
        tmp_path, outage_kafka, simulator, topics, INGESTER_INSTANCE_ID="first",
        INGESTER_FLUSH_TIMEOUT="2",
    )  # fmt: skip
    second: Daemon | None = None
    reader = TopicReader(outage_kafka.bootstrap_servers, topics.data)
    try:
        await first.follow(matches)
        await records_flowing(first)
        outage_kafka.stop()
        await wait_for(lambda: first.metric(SPOOL_RECORDS) > 0, "records spooled", 60)
        first.signal(signal.SIGTERM)
        # Reading has stopped; /metrics still answers while the flush waits (2 s).
        await wait_for(lambda: "no more reading" in first.output(), "reading stopped", 30)
        received = accounts.received(first) - first.total(SKIPPED)
        assert first.wait(30) == 0, first.output()
        kept = [
            json.loads(line)["message"]
            for line in first.output().splitlines()
            if line.startswith("{") and "kept in the spool" in line
        ]
        outage_kafka.start_again()
        second = _spooling_daemon(
            tmp_path, outage_kafka, simulator, topics, INGESTER_INSTANCE_ID="second"
        )
        started = second
        await second.wait_ready(90)
        await wait_for(lambda: started.metric(SPOOL_RECORDS) == 0, "the spool to drain", 120)
        await second.wait_active(matches, 60)
        await accounts.settle(simulator, second, matches, 90)
        await _every_last_state(reader, simulator, matches)
        of_first = {r.value for r in reader.records if r.headers.get("producer") == b"first"}
        books = accounts.ledgers(reader.records)
        accounts.report(
            "SIGTERM during the outage, restart on the same spool",
            books,
            received_by_first=received,
            distinct_records_of_first=len(of_first),
            kept_line=kept,
        )
        assert len(kept) == 1, "one line says how many records the spool kept"
        assert len(of_first) == received, "every frame the first process received is in"
        for match_id, book in books.items():
            assert not book.out_of_order(), (match_id, book.out_of_order()[:3])
    finally:
        await reader.close()
        _broker_back(outage_kafka)
        if first.alive():
            first.stop()
        if second is not None:
            assert second.stop() == 0
        simulator.stop()
