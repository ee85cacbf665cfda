"""The segment log under process and disk faults, each in a subprocess: a file-size limit
(``RLIMIT_FSIZE``: Python ignores SIGXFSZ, so a write past it fails with ``EFBIG``, as a full
disk fails with ``ENOSPC``) and ``kill -9`` in the middle of appending. The test process's own
limits are never changed."""

from __future__ import annotations

import errno
import json
import signal
import subprocess
import sys
from pathlib import Path

from ingester.produce.spool.log import SegmentLog

HEADER = """
import errno, json, resource, sys
from pathlib import Path
from ingester.produce.spool.log import SegmentLog, SpoolError

spool = Path(sys.argv[1])
limit = int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
"""

UNWRITABLE = (
    HEADER
    + """
try:
    SegmentLog(spool, 10**6)
except SpoolError as error:
    print(json.dumps({"error": str(error)}))
"""
)

DISK_FULL = (
    HEADER
    + """
def state(log):
    files = sorted((p.name, p.stat().st_size) for p in spool.glob("*.seg"))
    return [log.records, log.size, files]

log = SegmentLog(spool, 10**9, segment_bytes=int(sys.argv[3]))
batch = [b"%06d" % n + b"." * 294 for n in range(10)]
appended = 0
while sys.argv[4] == "fill" or appended < 20:
    log.append(batch)
    appended += 1
    if sys.argv[4] == "fill" and log.size + 3160 > limit:
        break
before = state(log)
try:
    if sys.argv[4] == "fill":
        log.append(batch)  # past the limit in the segment taking appends
    else:
        log.append([b"z" * limit])  # alone in a new segment, larger than the limit
    failed = None
except OSError as error:
    failed = error.errno
after = state(log)
got = []
while chunk := log.read(100):
    got += chunk
log.release(len(got))  # everything delivered: the segments go, appends start afresh
log.append(batch[:3])
log.close()
log = SegmentLog(spool, 10**9)
print(json.dumps({
    "failed": failed, "before": before, "after": after, "read": got == batch * appended,
    "final": [p.decode() for p in log.read(10)],
}))
"""
)

APPEND_LOOP = """
import sys
from pathlib import Path
from ingester.produce.spool.log import SegmentLog

log = SegmentLog(Path(sys.argv[1]), 10**9, segment_bytes=64 * 1024)
batch = int(sys.argv[2])
while True:
    log.append([b"%08d-%02d" % (batch, n) + b"." * 280 for n in range(10)])
    print(batch, flush=True)
    batch += 1
"""


def run(script: str, *args: object) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", script, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_a_directory_that_takes_no_write_is_refused_at_open(tmp_path: Path) -> None:
    result = run(UNWRITABLE, tmp_path / "spool", 0)
    assert "is not writable" in result["error"]
    assert "File too large" in result["error"]


def test_disk_full_at_append_leaves_the_log_as_it_was_and_usable(tmp_path: Path) -> None:
    result = run(DISK_FULL, tmp_path / "spool", 100_000, 10**6, "fill")
    assert result["failed"] == errno.EFBIG
    assert result["after"] == result["before"]  # records, size and every file's length
    assert result["before"][0] > 200
    assert result["read"]
    assert result["final"] == [f"{n:06d}".ljust(300, ".") for n in range(3)]


def test_disk_full_in_a_new_segment_removes_it(tmp_path: Path) -> None:
    result = run(DISK_FULL, tmp_path / "spool", 100_000, 8192, "big")
    assert result["failed"] == errno.EFBIG
    assert result["after"] == result["before"]
    assert len(result["before"][2]) > 5
    assert result["read"]
    assert result["final"] == [f"{n:06d}".ljust(300, ".") for n in range(3)]


def batch_payloads(batch: int) -> list[bytes]:
    return [b"%08d-%02d" % (batch, n) + b"." * 280 for n in range(10)]


def test_kill_9_while_appending_loses_no_append_that_returned(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    held: list[bytes] = []  # what the log held at the last reopen
    first = 0  # the batch the next run starts with
    for _ in range(3):  # each run appends after what the last one left, torn tail included
        process = subprocess.Popen(
            [sys.executable, "-c", APPEND_LOOP, str(spool), str(first)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert process.stdout is not None
        confirmed = first - 1  # the last batch whose append returned
        for line in process.stdout:
            confirmed = int(line)
            if confirmed - first == 300:
                break
        process.send_signal(signal.SIGKILL)
        for line in process.stdout.read().split():  # printed before the kill took effect
            confirmed = int(line)
        process.wait(timeout=30)
        assert process.returncode == -signal.SIGKILL
        log = SegmentLog(spool, 10**9)
        try:
            damage = log.take_damage()
            got: list[bytes] = []
            while chunk := log.read(1000):
                got += chunk
        finally:
            log.close()
        assert [d.kind for d in damage] in ([], ["torn_record"])
        assert got[: len(held)] == held
        new = got[len(held) :]
        appended = [p for b in range(first, confirmed + 2) for p in batch_payloads(b)]
        # Every batch whose append returned, in order; of the one in flight, a prefix.
        assert new == appended[: len(new)]
        assert len(new) >= (confirmed + 1 - first) * 10
        held = got
        first = confirmed + (2 if len(new) > (confirmed + 1 - first) * 10 else 1)
