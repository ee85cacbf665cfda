"""Per-match accounting: what the simulator sent, what the daemon received, what Kafka holds.

A frame is identified by ``(match_id, op, seq)``: a snapshot repeats the current ``seq``, so
an update and a later snapshot with the same ``seq`` are two frames, not a duplicate.
"""

from __future__ import annotations

import itertools
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from tests.e2e.harness import Daemon, Record, Simulator, TopicReader, wait_for

Frame = tuple[str, int]  # (op, seq)


@dataclass
class MatchLedger:
    """The records of one match in topic order, and what they say."""

    match_id: int
    frames: list[Frame] = field(default_factory=list)
    producers: list[bytes] = field(default_factory=list)

    @property
    def unique(self) -> list[Frame]:
        """The records without repeated updates, in topic order.

        Every snapshot is kept: the upstream repeats the current ``seq`` in each snapshot,
        so two snapshots with one ``seq`` are two frames received (say, before and after a
        reconnect of a finished match). Tests that need it compare :meth:`snapshots` with
        the snapshots the simulator sent.
        """
        seen: set[Frame] = set()
        out: list[Frame] = []
        for frame in self.frames:
            if frame[0] == "snapshot" or frame not in seen:
                seen.add(frame)
                out.append(frame)
        return out

    @property
    def duplicates(self) -> int:
        """Records repeating an update already in the topic (at-least-once re-sends)."""
        return len(self.frames) - len(self.unique)

    def out_of_order(self) -> list[tuple[Frame, Frame]]:
        """Neighbours (first occurrences) whose ``seq`` goes down outside a snapshot."""
        unique = self.unique
        return [
            (a, b) for a, b in itertools.pairwise(unique) if b[0] != "snapshot" and b[1] <= a[1]
        ]

    def gaps(self) -> list[tuple[Frame, Frame]]:
        """Neighbours (first occurrences) where an update skips a ``seq``."""
        unique = self.unique
        return [
            (a, b) for a, b in itertools.pairwise(unique) if b[0] == "update" and b[1] != a[1] + 1
        ]

    def snapshots(self) -> int:
        """Snapshot records of the match."""
        return sum(1 for op, _ in self.frames if op == "snapshot")

    @property
    def last_seq(self) -> int:
        return max(seq for _, seq in self.frames)


def ledgers(records: list[Record]) -> dict[int, MatchLedger]:
    """The data topic's records grouped per match."""
    out: dict[int, MatchLedger] = {}
    for record in records:
        assert record.decoded is not None
        match_id = int(record.key or b"0")
        ledger = out.setdefault(match_id, MatchLedger(match_id))
        ledger.frames.append((record.decoded["op"], record.decoded["seq"]))
        ledger.producers.append(record.headers.get("producer", b""))
    return out


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
