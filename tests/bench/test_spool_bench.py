"""The spool store benchmark runs at a tiny scale and fills every cell of its table."""

from __future__ import annotations

import subprocess
import sys


def test_the_spool_benchmark_fills_its_table() -> None:
    command = [sys.executable, "-m", "sportrix_devkit.bench.spool"]
    done = subprocess.run(
        [*command, "--records", "3000", "--sync-seconds", "2.5"],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    rows = [line.split("|")[1:-1] for line in done.stdout.splitlines() if line.startswith("| ")]
    assert rows[0][1:] == [" segment log ", " SQLite, WAL "]
    assert len(rows) == 9  # the header and 8 measures
    for row in rows[2:]:
        assert all(cell.strip() not in ("", "-", "0") for cell in row), row
    assert "µs per record" in done.stdout
