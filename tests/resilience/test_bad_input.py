"""Bad input: every malformed-frame kind of the tolerance table, and 10,000 bad commands (slow)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import orjson
from aiokafka import AIOKafkaProducer

from ingester.control.commands import encode_command
from ingester.control.topics import ensure_topics
from ingester.settings import load_settings
from sportrix_devkit.simulator.config import MALFORMED_KINDS
from tests.e2e.harness import Daemon, Simulator, TopicReader, Topics, add_matches, wait_for
from tests.e2e.test_pipeline import STAGE_OF_KIND
from tests.resilience.ledger import ledgers, read_all, report, sent, settle


async def test_every_malformed_kind_is_dead_lettered_exactly_and_neighbours_are_unaffected(
    tmp_path: Path,
    bootstrap: str,
    topics: Topics,
    data_reader: TopicReader,
    dlq_reader: TopicReader,
) -> None:
    simulator = Simulator(
        tmp_path,
        "--update-rate",
        "10",
        "--malformed-fraction",
        "0.3",
        "--malformed-kinds",
        ",".join(MALFORMED_KINDS),
    )
    matches = simulator.matches("soccer")[:3]
    daemon = Daemon(tmp_path, bootstrap, simulator.url, topics)
    try:
        await daemon.follow(matches)

        def each_kind_sent(n: int) -> bool:
            by_kind = simulator.get("/_sim/stats")["malformed_sent"]["by_kind"]
            return all(by_kind.get(kind, 0) >= n for kind in MALFORMED_KINDS)

        await wait_for(lambda: each_kind_sent(5), "five malformed frames of every kind", 60)
        simulator.get("/_sim/malformed?fraction=0")
        await settle(simulator, daemon, matches)
        injected = Counter(simulator.get("/_sim/stats")["malformed_sent"]["by_kind"])
        expected = Counter()
        for kind, stage in STAGE_OF_KIND.items():
            expected[stage] += injected[kind]
        counted = {
            stage: daemon.metric("sportrix_ingester_dlq_records_total", stage=stage)
            for stage in ("decode", "validate", "convert", "encode")
        }
        skipped = daemon.metric("sportrix_ingester_skipped_frames_total", reason="unknown_op")
        dead = sum(expected.values())
        await read_all(dlq_reader, dead, f"{dead} dead letters")
        in_dlq = Counter(r.headers["stage"].decode() for r in dlq_reader.records)
        soccer = daemon.total("sportrix_ingester_frames_total", sport="soccer")
        good = soccer - expected["validate"]
        await read_all(data_reader, int(good), f"{good:.0f} records")
        books = ledgers(data_reader.records)
        report(
            "malformed frames",
            books,
            injected=dict(injected),
            dlq_metric=counted,
            dlq_topic=dict(in_dlq),
            unknown_op_skipped=skipped,
        )
        assert counted == {
            **dict.fromkeys(("decode", "validate", "convert", "encode"), 0),
            **expected,
        }
        assert in_dlq == expected
        assert skipped == injected["unknown_op"]
        for record in dlq_reader.records:
            assert record.value is not None
            stage = record.headers["stage"].decode()
            assert record.headers["error"]
            assert record.headers["received_at"].endswith(b"Z")
            if stage == "convert":
                assert b'"curling"' in record.value, "raw bytes kept"
                assert record.key is not None
            if stage == "validate":
                assert int(record.key or b"0") in matches
        # Neighbours: malformed frames never replace valid ones, so every match is whole.
        stats = sent(simulator, matches)
        assert len(data_reader.records) == good
        for match_id in matches:
            book = books[match_id]
            assert (
                len(book.frames)
                == stats[match_id]["snapshots_sent"] + stats[match_id]["updates_sent"]
            )
            assert book.last_seq == stats[match_id]["last_seq"]
            assert not book.gaps()
            assert book.duplicates == 0
    finally:
        assert daemon.stop() == 0
        simulator.stop()


def _bad_commands(
    count: int, known: list[int]
) -> tuple[list[tuple[bytes | None, bytes]], Counter[str]]:
    """``count`` invalid commands of every rejection reason, some under followed matches' keys."""
    kinds: list[tuple[str, bytes | None, bytes]] = []
    for i in range(count):
        match_id = known[i % len(known)] if i % 3 == 0 else 70_000 + i
        key = str(match_id).encode()
        good = orjson.dumps({"action": "add", "match_id": match_id})
        variant = i % 12
        if variant == 0:
            kinds.append(("bad_key", b"not-a-number", good))
        elif variant == 1:
            kinds.append(("bad_key", b"0" + key, good))
        elif variant == 2:
            kinds.append(("oversize", key, b'{"action":"add","pad":"' + b"x" * 5000 + b'"}'))
        elif variant == 3:
            kinds.append(("not_json", key, good[:-3]))
        elif variant == 4:
            kinds.append(("not_json", key, b"\xff\xfe\x00add"))
        elif variant == 5:
            kinds.append(("not_object", key, b"[1, 2]"))
        elif variant == 6:
            kinds.append(
                ("unknown_action", key, orjson.dumps({"action": "drop", "match_id": match_id}))
            )
        elif variant == 7:
            kinds.append(("unknown_action", key, orjson.dumps({"match_id": match_id})))
        elif variant == 8:
            kinds.append(
                ("bad_match_id", key, orjson.dumps({"action": "remove", "match_id": str(match_id)}))
            )
        elif variant == 9:
            kinds.append(
                ("bad_match_id", key, orjson.dumps({"action": "remove", "match_id": -match_id}))
            )
        elif variant == 10:
            kinds.append(
                ("key_mismatch", key, orjson.dumps({"action": "remove", "match_id": match_id + 1}))
            )
        else:
            kinds.append(("bad_match_id", key, orjson.dumps({"action": "add", "match_id": 1.5})))
    return [(k, v) for _, k, v in kinds], Counter(reason for reason, _, _ in kinds)


async def test_10000_bad_commands_between_good_ones(
    tmp_path: Path, bootstrap: str, topics: Topics, data_reader: TopicReader
) -> None:
    simulator = Simulator(tmp_path, "--update-rate", "2")
    a, b, c, d = simulator.matches("soccer")[:4]
    bad, reasons = _bad_commands(10_000, [a, b])
    stream: list[tuple[bytes | None, bytes | None]] = [
        encode_command("add", a),
        *bad[:5000],
        encode_command("add", b),
        encode_command("add", d),
        *bad[5000:],
        encode_command("add", c),
        encode_command("remove", d),
    ]
    await ensure_topics(
        load_settings(
            kafka_bootstrap_servers=bootstrap, config_topic=topics.config, config_partitions=6
        ),
        data_topics=False,
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", max_request_size=1 << 20)
    await producer.start()
    try:
        for key, value in stream:
            await producer.send(topics.config, value, key=key)
        await producer.flush()
    finally:
        await producer.stop()
    daemon = Daemon(tmp_path, bootstrap, simulator.url, topics)
    try:
        await daemon.wait_ready(90)
        pid = daemon.proc.pid
        await daemon.wait_active([a, b, c])
        rejected = daemon.metric("sportrix_ingester_config_commands_total", result="rejected")
        applied = daemon.metric("sportrix_ingester_config_commands_total", result="applied")
        by_reason = {
            dict(labels)["reason"]: value
            for (name, labels), value in daemon.metrics().items()
            if name == "sportrix_ingester_config_rejections_total"
        }
        lines = [line for line in daemon.output().splitlines() if "config command rejected" in line]
        await data_reader.poll_until(
            lambda rs: {int(r.key or b"0") for r in rs} >= {a, b, c}, "records of a, b and c"
        )
        # a good command after them all, while running, still applies
        await add_matches(bootstrap, topics.config, [d])
        await daemon.wait_active([a, b, c, d])
        print(
            f"== 10,000 bad commands: rejected={rejected}, applied={applied}, "
            f"by_reason={by_reason}, log_lines={len(lines)}, "
            f"followed={sorted(daemon.match_states())}"
        )
        assert rejected == 10_000
        assert by_reason == {reason: float(n) for reason, n in reasons.items()}
        assert applied == 5
        assert len(lines) == 10_000, "each rejected command logged once"
        assert json.loads(lines[0])["level"] == "warning"
        assert set(daemon.match_states()) == {a, b, c, d}
        assert {int(r.key or b"0") for r in data_reader.records} <= {a, b, c, d}
        assert daemon.proc.pid == pid
        assert daemon.metric("sportrix_ingester_ready") == 1
    finally:
        assert daemon.stop() == 0
        simulator.stop()
