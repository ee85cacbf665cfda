"""``sportrix-ingester demo``: the whole product on one machine, with no key and no Docker.

Starts a local Kafka broker (or uses ``KAFKA_BOOTSTRAP_SERVERS``), the simulator and the
ingester daemon as separate processes, adds a few live matches of each sport through
the config topic, and prints the decoded records until Ctrl-C, which stops everything the
demo started within a few seconds and prints a one-paragraph summary (records, dead letters,
lag p50/p99, where the logs are).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from ingester.control.cli import write_commands
from ingester.settings import load_settings
from ingester.tools.tail import TailStats, tail
from sportrix_devkit.bench.processes import http_get
from sportrix_devkit.bench.report import percentile
from sportrix_devkit.simulator.cli import add_match_flags, match_counts
from sportrix_devkit.waiting import WaitTimeout, free_port, stop_process, wait_until

__all__ = ["register", "summary"]

_DEMO_KEY = "demo-key"
#: Seconds the daemon may spend flushing on the way out (it gets one more to exit), and the
#: broker to stop, before a SIGKILL: Ctrl-C must be done in well under 5 s, and the broker's
#: data is wiped at the next start anyway.
_STOP_GRACE = 2.0
_KAFKA_STOP_GRACE = 1.0
#: The daemon, started with the broker so that its imports overlap the broker's start-up: it
#: imports its modules, then reads the broker's address on stdin and runs ``run``.
_DAEMON_ONCE_TOLD = (
    "import os, sys; import ingester.app; "
    "os.environ['KAFKA_BOOTSTRAP_SERVERS'] = sys.stdin.readline().strip(); "
    "from ingester.cli import main; sys.exit(main(['run']))"
)


def _say(text: str) -> None:
    print(f"demo: {text}", file=sys.stderr, flush=True)


def _get_json(url: str, timeout: float = 2.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.load(response)


def _wait_for(url: str, what: str, process: subprocess.Popen[bytes], timeout: float) -> Any:
    def answer() -> Any:
        if process.poll() is not None:
            raise SystemExit(f"demo: {what} exited with code {process.returncode}")
        return _get_json(url)

    try:
        return wait_until(
            answer,
            f"{what} to answer at {url}",
            timeout,
            interval=0.2,
            retry_on=(OSError, ValueError),
        )
    except WaitTimeout as exc:
        raise SystemExit(f"demo: {exc}") from None


class _Children:
    """The demo's Python children, each in its own session (a terminal's Ctrl-C reaches only
    the demo), stopped newest first: SIGTERM, then SIGKILL to its group after ``grace``."""

    def __init__(self) -> None:
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(
        self, argv: list[str], log: Path, env: dict[str, str], *, stdin: bool = False
    ) -> subprocess.Popen[bytes]:
        with log.open("wb") as out:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        self.processes.append(process)
        return process

    def stop(self, grace: float) -> None:
        for process in reversed(self.processes):
            stop_process(process, grace)


@contextlib.contextmanager
def _kafka(workdir: Path) -> Iterator[tuple[str, Path | None]]:
    """The broker's address and its log file (``None`` for an external broker)."""
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        _say(f"using the Kafka broker at {external}")
        yield external, None
        return
    from sportrix_devkit.localkafka import LocalKafka

    _say("starting a local Apache Kafka broker (KRaft)...")
    with LocalKafka(workdir / "kafka", stop_timeout=_KAFKA_STOP_GRACE) as broker:
        _say(f"Kafka is up at {broker.bootstrap_servers}")
        yield broker.bootstrap_servers, broker.log_file


def _metric_total(metrics_text: str, family: str) -> float | None:
    """The sum of every sample of ``family`` in a Prometheus text exposition, if present."""
    for metric in text_string_to_metric_families(metrics_text):
        if metric.name == family:
            return sum(s.value for s in metric.samples if s.name == family + "_total")
    return None


def summary(stats: TailStats, metrics_text: str | None, logs: list[Path], stopped_in: float) -> str:
    """The paragraph printed after Ctrl-C: records, dead letters, lag p50/p99, the logs.

    ``metrics_text`` is the daemon's last ``/metrics`` (``None`` if it did not answer).
    """
    lags = sorted(stats.lags_ms)
    produced = dlq = None
    if metrics_text is not None:
        produced = _metric_total(metrics_text, "sportrix_ingester_records_produced")
        dlq = _metric_total(metrics_text, "sportrix_ingester_dlq_records")
    records = f"{stats.records:,} records decoded from the data topic"
    if produced is not None:
        records += f" ({produced:,.0f} produced by the ingester)"
    dead = "dead letters unknown (no /metrics)" if dlq is None else f"{dlq:,.0f} dead letters"
    lag = "no lag measured"
    if lags:
        lag = (
            f"lag from the match update to this terminal p50 {percentile(lags, 0.5):,.0f} ms, "
            f"p99 {percentile(lags, 0.99):,.0f} ms"
        )
    where = ", ".join(str(log) for log in logs)
    return f"demo: stopped in {stopped_in:.1f} s. {records}, {dead}; {lag}. Logs: {where}."


def _pick_matches(catalogue: list[dict[str, Any]], counts: dict[str, int]) -> list[int]:
    chosen: list[int] = []
    for sport, count in counts.items():
        live = [m for m in catalogue if m["sport"] == sport and m["status"] == "live"]
        others = [m for m in catalogue if m["sport"] == sport and m["status"] != "live"]
        chosen.extend(m["match_id"] for m in (live + others)[:count])
    return chosen


def _run_demo(args: argparse.Namespace) -> int:
    # The children run in their own sessions, so a SIGTERM or a closed terminal (SIGHUP) must
    # take the same way out as Ctrl-C, or the simulator and the daemon would outlive the demo.
    interrupted: list[float] = []  # when the first signal came, for the summary

    def interrupt(signum: int, frame: object) -> None:
        interrupted.append(time.monotonic())
        raise KeyboardInterrupt

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, interrupt)
    workdir = Path(args.workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    sim_port, http_port = free_port(), args.http_port or free_port()
    stats = TailStats()
    metrics_text: str | None = None
    children = _Children()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with contextlib.ExitStack() as stack:
        # Stopping is idempotent: this first call only matters if Kafka fails to start.
        stack.callback(children.stop, _STOP_GRACE + 1)
        # The simulator needs no Kafka, and the daemon waits for its address: both start up
        # while the broker does. The daemon is stopped first, while its upstream still serves.
        simulator = children.start(
            [
                sys.executable, "-m", "ingester", "simulate", "--host", "127.0.0.1",
                "--port", str(sim_port), "--api-key", _DEMO_KEY, "--speed", str(args.speed),
            ],
            workdir / "simulator.log",
            env,
        )  # fmt: skip
        daemon_env = {
            **env,
            "SPORTRIX_URL": f"ws://127.0.0.1:{sim_port}/v1/stream",
            "SPORTRIX_API_KEY": _DEMO_KEY,
            "INGESTER_HTTP_PORT": str(http_port),
            "INGESTER_LOG_FORMAT": "text",
            "INGESTER_INSTANCE_ID": "demo",
            "SPORTRIX_PROXY": "none",  # the simulator is local, whatever proxy the shell has
            "INGESTER_FLUSH_TIMEOUT": str(_STOP_GRACE),
            # What Kafka has not taken waits on disk, and the next demo delivers it first.
            "INGESTER_SPOOL_DIR": str(workdir / "spool"),
        }
        daemon = children.start(
            [sys.executable, "-c", _DAEMON_ONCE_TOLD], workdir / "ingester.log", daemon_env,
            stdin=True,
        )  # fmt: skip
        bootstrap, kafka_log = stack.enter_context(_kafka(workdir))
        # Registered after Kafka, so run before it stops: the daemon flushes to a live broker.
        stack.callback(children.stop, _STOP_GRACE + 1)
        # Once stopping, a second Ctrl-C must not cut the clean-up short (it is bounded).
        stack.callback(_ignore_interrupts)
        assert daemon.stdin is not None
        with contextlib.suppress(BrokenPipeError):  # exited early: _wait_for says so below
            daemon.stdin.write(f"{bootstrap}\n".encode())
            daemon.stdin.close()
        catalogue = _wait_for(
            f"http://127.0.0.1:{sim_port}/v1/matches", "the simulator", simulator, 30
        )
        _say(f"simulator serving {len(catalogue)} matches at ws://127.0.0.1:{sim_port}/v1/stream")
        _wait_for(f"http://127.0.0.1:{http_port}/healthz", "the ingester", daemon, 60)
        settings = load_settings(kafka_bootstrap_servers=bootstrap)
        matches = _pick_matches(catalogue, match_counts(args))
        asyncio.run(write_commands(settings, "add", matches))
        _say(f"added matches {', '.join(map(str, matches))} through the config topic")
        _say(
            f"metrics http://127.0.0.1:{http_port}/metrics, status "
            f"http://127.0.0.1:{http_port}/status, logs in {workdir}; Ctrl-C stops everything"
        )
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(
                tail(
                    settings,
                    from_beginning="KAFKA_BOOTSTRAP_SERVERS" not in os.environ,
                    limit=args.max,
                    match_ids=set(),
                    as_json=False,
                    out=sys.stdout,
                    stats=stats,
                )
            )
        stopping = interrupted[0] if interrupted else time.monotonic()
        _ignore_interrupts()
        _say("stopping the ingester, the simulator and Kafka...")
        with contextlib.suppress(OSError):
            metrics_text = http_get(f"http://127.0.0.1:{http_port}/metrics", 1).decode()
    logs = [workdir / "ingester.log", workdir / "simulator.log"]
    print(
        summary(stats, metrics_text, logs + ([kafka_log] if kafka_log else []),
                time.monotonic() - stopping),
        file=sys.stderr,
        flush=True,
    )  # fmt: skip
    return 0


def _ignore_interrupts() -> None:
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``demo`` sub-command."""
    parser = subparsers.add_parser(
        "demo", help="run Kafka, the simulator and the ingester locally and print the records"
    )
    add_match_flags(
        parser,
        default="demo_matches",
        help_text="{sport} matches to follow",
        generic=None,
    )
    parser.add_argument("--speed", type=float, default=5.0, help="simulated time per second")
    parser.add_argument("--http-port", type=int, default=0, help="the ingester's HTTP port")
    parser.add_argument("--max", type=int, metavar="N", help="stop after N records")
    parser.add_argument(
        "--workdir", default=".local/demo", help="where the broker's data and the logs go"
    )
    parser.set_defaults(handler=_run_demo)
