"""The disk spool's store measured: the segment log beside SQLite in WAL mode, same payloads.

``python -m sportrix_devkit.bench.spool`` prints one markdown table (``docs/dependencies.md``,
*Disk spool store*): append throughput (batches of 100 records), the same with an fsync per
batch, read + release (batches of 500), the drain of a backlog while new batches keep coming
(records decoded with :func:`~ingester.produce.spool.records.from_payload` as the daemon will),
the cost of a sync every second while records arrive at 2,000/s, and the bytes on disk per
record. The payloads are :func:`~ingester.produce.spool.records.to_payload` of ~300-byte records.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from ingester.pipeline import OutRecord
from ingester.produce.spool.log import SegmentLog
from ingester.produce.spool.records import from_payload, to_payload

__all__ = ["main", "measure"]

APPEND_BATCH = 100
READ_BATCH = 500


class Store(Protocol):
    """What the benchmark does to a store."""

    def append(self, payloads: Sequence[bytes]) -> None: ...
    def read(self, limit: int) -> list[bytes]: ...
    def release(self, count: int) -> None: ...
    def sync(self) -> None: ...
    def close(self) -> None: ...


class SqliteStore:
    """The SQLite candidate: one table in WAL mode (ids never reused: ``AUTOINCREMENT``), a
    transaction per append, the rows read after the last id returned, released by a
    ``DELETE`` up to an id. ``synchronous=FULL`` fsyncs the WAL at every commit (then
    :meth:`sync` has nothing left to do); ``NORMAL`` only at checkpoints, so :meth:`sync`
    runs one (from its own connection, as a worker thread would)."""

    def __init__(self, directory: Path, *, full: bool) -> None:
        self._path = directory / "spool.db"
        self._db = self._connect()
        self._db.execute(f"PRAGMA synchronous={'FULL' if full else 'NORMAL'}")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS spool "
            "(id INTEGER PRIMARY KEY AUTOINCREMENT,"
            " appended_at REAL NOT NULL, payload BLOB NOT NULL)"
        )
        self._full = full
        self._read: list[int] = []
        self._after = 0
        self._syncer: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        return db

    def append(self, payloads: Sequence[bytes]) -> None:
        now = time.time()
        self._db.execute("BEGIN")
        self._db.executemany(
            "INSERT INTO spool (appended_at, payload) VALUES (?, ?)", [(now, p) for p in payloads]
        )
        self._db.execute("COMMIT")

    def read(self, limit: int) -> list[bytes]:
        rows = self._db.execute(
            "SELECT id, payload FROM spool WHERE id > ? ORDER BY id LIMIT ?", (self._after, limit)
        ).fetchall()
        if rows:
            self._after = rows[-1][0]
            self._read += [row[0] for row in rows]
        return [row[1] for row in rows]

    def release(self, count: int) -> None:
        if count <= 0:
            return
        self._db.execute("DELETE FROM spool WHERE id <= ?", (self._read[count - 1],))
        del self._read[:count]

    def sync(self) -> None:
        if self._full:
            return  # every commit was synced
        if self._syncer is None:
            self._syncer = self._connect()
        self._syncer.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def close(self) -> None:
        if self._syncer is not None:
            self._syncer.close()
        self._db.close()


def sample_payloads(count: int) -> list[bytes]:
    """``count`` distinct payloads of about 300 bytes (a soccer update's record)."""
    return [
        to_payload(
            OutRecord(
                topic="live-scores",
                key=str(41000 + n % 500).encode(),
                value=bytes(12) + n.to_bytes(8, "little") * 25,
                headers=[("sport", b"soccer"), ("op", b"update"), ("schema", b"sportrix.Soccer")],
                received_at=1_800_000_000.0 + n / 1000,
                sport="soccer",
                updated_at_ms=1_800_000_000_000 + n,
            )
        )
        for n in range(count)
    ]


def _rate(count: int, seconds: float) -> float:
    return count / seconds if seconds else 0.0


def _batches(payloads: list[bytes], size: int) -> list[list[bytes]]:
    return [payloads[i : i + size] for i in range(0, len(payloads), size)]


def _disk_bytes(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())


def _periodic_sync(store: Store, payloads: list[bytes], rate: float, seconds: float) -> list[float]:
    """Append at ``rate`` records/s for ``seconds`` while a thread syncs every second; the
    duration of each sync, in milliseconds."""
    durations: list[float] = []
    done = threading.Event()

    def syncing() -> None:
        while not done.wait(1.0):
            start = time.perf_counter()
            store.sync()
            durations.append((time.perf_counter() - start) * 1000)

    thread = threading.Thread(target=syncing)
    thread.start()
    start = time.perf_counter()
    try:
        for n, batch in enumerate(_batches(payloads, APPEND_BATCH)):
            if time.perf_counter() - start > seconds:
                break
            store.append(batch)
            pause = start + (n + 1) * APPEND_BATCH / rate - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
    finally:
        done.set()
        thread.join()
    return durations


def measure(
    make: Callable[[Path], Store],
    full: Callable[[Path], Store],
    records: int,
    sync_seconds: float = 6.0,
) -> dict[str, str]:
    """One column of the table: the figures of one store (``full``: the same store set to
    fsync every append, for the per-batch row)."""
    payloads = sample_payloads(records)
    batches = _batches(payloads, APPEND_BATCH)
    row: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="spool-bench-") as name:
        directory = Path(name)
        store = make(directory)
        start = time.perf_counter()
        for batch in batches:
            store.append(batch)
        row["append, no fsync (records/s)"] = f"{_rate(records, time.perf_counter() - start):,.0f}"
        row["bytes on disk per record"] = f"{_disk_bytes(directory) / records:,.0f}"
        start = time.perf_counter()
        drained = 0
        while batch := store.read(READ_BATCH):
            store.release(len(batch))
            drained += len(batch)
        row["read + release (records/s)"] = f"{_rate(drained, time.perf_counter() - start):,.0f}"
        for batch in batches:  # a backlog again, drained while batches keep coming
            store.append(batch)
        start = time.perf_counter()
        drained = 0
        for n in range(0, records, READ_BATCH):
            store.append(batches[n // READ_BATCH % len(batches)])
            read = store.read(READ_BATCH)
            for payload in read:
                from_payload(payload)
            store.release(len(read))
            drained += len(read)
        row["drain with appends flowing, decoded (records/s)"] = (
            f"{_rate(drained, time.perf_counter() - start):,.0f}"
        )
        store.close()
    with tempfile.TemporaryDirectory(prefix="spool-bench-") as name:
        store = full(Path(name))
        count = min(len(batches), 300)
        start = time.perf_counter()
        for batch in batches[:count]:
            store.append(batch)
            store.sync()
        seconds = time.perf_counter() - start
        row["append + fsync per batch (records/s)"] = f"{_rate(count * APPEND_BATCH, seconds):,.0f}"
        row["… ms per batch"] = f"{seconds / count * 1000:.2f}"
        store.close()
    with tempfile.TemporaryDirectory(prefix="spool-bench-") as name:
        store = make(Path(name))
        durations = _periodic_sync(store, payloads, rate=2000, seconds=sync_seconds)
        row["sync every 1 s at 2,000 records/s: ms per sync (mean / max)"] = (
            f"{statistics.mean(durations):.1f} / {max(durations):.1f}" if durations else "-"
        )
        store.close()
    return row


def _segment_log(directory: Path) -> Store:
    return SegmentLog(directory / "spool", 10 * 1024**3)


def main(argv: Sequence[str] | None = None) -> None:
    """Print the table: segment log beside SQLite (WAL)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--records", type=int, default=100_000, help="records (default 100,000)")
    parser.add_argument(
        "--sync-seconds", type=float, default=6.0, help="seconds of the 1 s sync row (default 6)"
    )
    args = parser.parse_args(argv)
    columns = {
        "segment log": measure(_segment_log, _segment_log, args.records, args.sync_seconds),
        "SQLite, WAL": measure(
            lambda d: SqliteStore(d, full=False),
            lambda d: SqliteStore(d, full=True),
            args.records,
            args.sync_seconds,
        ),
    }
    payload = sample_payloads(1)[0]
    record = from_payload(payload)
    start = time.process_time()
    for _ in range(20_000):
        from_payload(to_payload(record))
    codec = (time.process_time() - start) / 20_000 * 1e6
    print(f"| {args.records:,} records of {len(payload)} B | " + " | ".join(columns) + " |")
    print("| --- |" + " --- |" * len(columns))
    for key in next(iter(columns.values())):
        print(f"| {key} | " + " | ".join(column[key] for column in columns.values()) + " |")
    print(f"\nto_payload + from_payload: {codec:.1f} µs per record (CPU)")


if __name__ == "__main__":
    main()
