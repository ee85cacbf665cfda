"""Per-match accounting: what the simulator sent, what the daemon received, what Kafka holds.

The topic's side is :class:`~sportrix_devkit.bench.ledger.MatchLedger` (shared with
``bench outage``); this module reads it from a :class:`TopicReader` and the other two
sides from the simulator's and the daemon's HTTP endpoints.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

from sportrix_devkit.bench.ledger import MatchLedger, Row, frame_of, group
from tests.e2e.harness import Daemon, Record, Simulator, TopicReader, wait_for


def ledgers(records: list[Record]) -> dict[int, MatchLedger]:
    """The data topic's records grouped per match."""

    def rows() -> Iterator[Row]:
        for record in records:
            assert record.value is not None
            frame, received_at = frame_of(record.value)
            headers = record.headers
            yield (
                int(record.key or b"0"),
                frame,
                headers.get("producer", b""),
                headers.get("replayed") == b"1",
                received_at,
            )

    return group(rows())


def sent(simulator: Simulator, matches: list[int]) -> dict[int, dict[str, Any]]:
    """Per match from ``/_sim/stats``: ``snapshots_sent``, ``updates_sent``, ``last_seq``..."""
    stats = simulator.get("/_sim/stats")["matches"]
    return {m: stats[str(m)] for m in matches}


def frames_sent(simulator: Simulator, matches: list[int]) -> dict[int, int]:
    return {m: s["snapshots_sent"] + s["updates_sent"] for m, s in sent(simulator, matches).items()}


def received(daemon: Daemon) -> float:
    """Data frames the daemon received (``frames_total``, every sport and op)."""
    return daemon.total("sportrix_ingester_frames_total")


async def settle(
    simulator: Simulator, daemon: Daemon, matches: list[int], deadline: float = 60
) -> None:
    """End every match at the simulator, then wait until the daemon has received and
    Kafka has acknowledged everything the simulator sent."""
    for match_id in matches:
        simulator.get(f"/_sim/finish?match_id={match_id}")

    def caught_up() -> bool:
        stats = sent(simulator, matches)
        states = {m["match_id"]: m for m in daemon.status()["matches"]}
        return (
            all(states.get(m, {}).get("last_seq") == stats[m]["last_seq"] for m in matches)
            and daemon.metric("sportrix_ingester_buffered_records") == 0
        )

    await wait_for(caught_up, "the daemon to receive and flush every match's last frame", deadline)


async def read_all(reader: TopicReader, expected: int, what: str, deadline: float = 60) -> None:
    """Read until at least ``expected`` records, then a little longer for stragglers."""
    await reader.poll_until(lambda rs: len(rs) >= expected, what, deadline)
    end = time.monotonic() + 2.0
    await reader.poll_until(lambda rs: time.monotonic() > end, "stragglers", 10)


def report(title: str, books: dict[int, MatchLedger], **extra: Any) -> str:
    """One line per match for the test output (``pytest -s`` or a failure shows it)."""
    lines = [f"== {title}: " + ", ".join(f"{k}={v}" for k, v in extra.items())]
    for match_id, ledger in sorted(books.items()):
        lines.append(
            f"   match {match_id}: {len(ledger.frames)} records, {len(ledger.unique)} frames, "
            f"{ledger.duplicates} duplicates, {ledger.snapshots()} snapshots, "
            f"last seq {ledger.last_seq}, gaps {len(ledger.gaps())}, "
            f"out of order {len(ledger.out_of_order())}"
        )
    text = "\n".join(lines)
    print(text)
    return text


def rss_kib(pid: int) -> int:
    """Resident set size of ``pid`` in KiB."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def count(items: list[Any]) -> Counter[Any]:
    return Counter(items)
