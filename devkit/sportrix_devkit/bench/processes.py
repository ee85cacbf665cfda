"""Child processes for the benchmark (simulator, daemon) and what /proc says about them."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

from sportrix_devkit.waiting import free_port, stop_process, wait_until

__all__ = [
    "Child",
    "SimulatorProcess",
    "cpu_seconds",
    "http_get",
    "memory_mb",
    "metric_value",
]

PYTHON = [sys.executable, "-m", "ingester"]
_TICKS = os.sysconf("SC_CLK_TCK")


def http_get(url: str, timeout: float = 5.0) -> bytes:
    """The body of ``GET url`` (raises ``OSError`` on failure or a non-200 answer)."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        body: bytes = response.read()
        return body


def metric_value(metrics_text: str, name: str, labels: str = "") -> float | None:
    """One sample of a Prometheus text exposition, e.g. ``labels='state="active"'``."""
    pattern = re.escape(name + (f"{{{labels}}}" if labels else "")) + r" ([0-9.eE+-]+)$"
    match = re.search(pattern, metrics_text, re.MULTILINE)
    return float(match[1]) if match else None


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds of ``pid`` so far (``/proc/<pid>/stat``)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def memory_mb(pid: int) -> tuple[float, float]:
    """``(VmRSS, VmHWM)`` of ``pid`` in MB: resident now and its peak."""
    values: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return values.get("VmRSS", 0.0), values.get("VmHWM", 0.0)


class Child:
    """``python -m ingester ARGS`` (or another ``module``) with its output in a log file;
    stopped with SIGTERM."""

    def __init__(
        self,
        args: list[str],
        log: Path,
        env: dict[str, str] | None = None,
        module: str = "ingester",
    ) -> None:
        self.log = log
        self._terminated = False
        self._out = log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            stdout=self._out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        """The process id (the Python interpreter itself)."""
        return self.proc.pid

    def check_alive(self) -> None:
        """Raise ``RuntimeError`` with the log's tail when the process has exited."""
        if self.proc.poll() is not None:
            tail = self.log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{self.log.name} exited with {self.proc.returncode}:\n{tail}")

    def terminate(self) -> None:
        """SIGTERM, once: the process begins its orderly shutdown; :meth:`stop` waits for it."""
        if self.proc.poll() is None and not self._terminated:
            self._terminated = True
            self.proc.send_signal(signal.SIGTERM)

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, then SIGKILL the process group after ``timeout``; the exit code."""
        self.terminate()
        code = stop_process(self.proc, timeout, terminate=False)
        self._out.close()
        return code


class SimulatorProcess(Child):
    """``sportrix-ingester simulate`` on a free loopback port, waited on until it serves."""

    def __init__(self, log: Path, key: str, args: list[str]) -> None:
        self.port = free_port()
        super().__init__(
            ["simulate", "--host", "127.0.0.1", "--port", str(self.port), "--api-key", key,
             "--log-level", "WARNING", *args],
            log,
        )  # fmt: skip
        self.url = f"ws://127.0.0.1:{self.port}/v1/stream"
        self.catalogue: list[dict[str, Any]] = wait_until(
            self._catalogue, "the simulator's /v1/matches", 60, retry_on=(OSError,)
        )

    def _catalogue(self) -> list[dict[str, Any]]:
        self.check_alive()
        listing: list[dict[str, Any]] = json.loads(self.get_raw("/v1/matches"))
        return listing

    def get_raw(self, path: str) -> bytes:
        """``GET path`` on the simulator's HTTP side."""
        return http_get(f"http://127.0.0.1:{self.port}{path}", 30)

    def frames_sent(self) -> int:
        """Frames written to every connection so far (``/_sim/stats``)."""
        stats = json.loads(self.get_raw("/_sim/stats"))
        return int(sum(stats["frames_sent"]["by_op"].values()))
