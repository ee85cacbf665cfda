"""``sportrix-ingester kafka start|status|stop`` leaves a broker running between commands."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.kafka


def kafka_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sportrix_devkit.localkafka", *args],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def broker_pids(data_dir: Path) -> list[str]:
    return subprocess.run(
        ["pgrep", "-f", f"kafka.Kafka {data_dir}"], capture_output=True, text=True, check=False
    ).stdout.split()


def test_start_status_stop(tmp_path):
    data_dir = tmp_path / "kafka"
    try:
        started = kafka_cli("start", "--data-dir", str(data_dir), "--port", "0", "--secure",
                            "--secure-port", "0")  # fmt: skip
        assert started.returncode == 0, started.stderr
        assert "KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:" in started.stdout
        assert len(broker_pids(data_dir)) == 1

        status = kafka_cli("status", "--data-dir", str(data_dir))
        assert status.returncode == 0, status.stdout + status.stderr
        assert "takes records" in status.stdout
        assert "SASL_SSL" in status.stdout
        password = json.loads((data_dir / "state.json").read_text())["sasl_password"]
        assert password not in started.stdout + status.stdout
    finally:
        stopped = kafka_cli("stop", "--data-dir", str(data_dir))
    assert stopped.returncode == 0, stopped.stderr
    assert broker_pids(data_dir) == []
    assert kafka_cli("status", "--data-dir", str(data_dir)).returncode == 1
