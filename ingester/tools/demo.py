"""``sportrix-ingester demo``: the whole product on one machine, with no key and no Docker.

Starts a local Kafka broker (or uses ``KAFKA_BOOTSTRAP_SERVERS``), the simulator and the
ingester daemon as separate processes, adds a few live soccer and cricket matches through
the config topic, and prints the decoded records until Ctrl-C, which stops everything the
demo started.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ingester.control.cli import write_commands
from ingester.settings import load_settings
from ingester.tools.tail import tail

__all__ = ["register"]

_DEMO_KEY = "demo-key"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _say(text: str) -> None:
    print(f"demo: {text}", file=sys.stderr, flush=True)


def _get_json(url: str, timeout: float = 2.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.load(response)


def _wait_for(url: str, what: str, process: subprocess.Popen[bytes], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"demo: {what} exited with code {process.returncode}")
        with contextlib.suppress(OSError, ValueError):
            return _get_json(url)
        time.sleep(0.2)
    raise SystemExit(f"demo: {what} did not answer at {url} within {timeout:.0f}s")


@contextlib.contextmanager
def _process(argv: list[str], log: Path, env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        process = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextlib.contextmanager
def _kafka(workdir: Path) -> Iterator[str]:
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        _say(f"using the Kafka broker at {external}")
        yield external
        return
    from ingester.localkafka import LocalKafka

    _say("starting a local Apache Kafka broker (KRaft)...")
    with LocalKafka(workdir / "kafka") as broker:
        _say(f"Kafka is up at {broker.bootstrap_servers}")
        yield broker.bootstrap_servers


def _pick_matches(catalogue: list[dict[str, Any]], soccer: int, cricket: int) -> list[int]:
    chosen: list[int] = []
    for sport, count in (("soccer", soccer), ("cricket", cricket)):
        live = [m for m in catalogue if m["sport"] == sport and m["status"] == "live"]
        others = [m for m in catalogue if m["sport"] == sport and m["status"] != "live"]
        chosen.extend(m["match_id"] for m in (live + others)[:count])
    return chosen


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _run_demo(args: argparse.Namespace) -> int:
    # The children run in their own sessions, so a SIGTERM or a closed terminal (SIGHUP) must
    # take the same way out as Ctrl-C, or the simulator and the daemon would outlive the demo.
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupt)
    workdir = Path(args.workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    python = [sys.executable, "-m", "ingester"]
    sim_port, http_port = _free_port(), args.http_port or _free_port()
    with contextlib.ExitStack() as stack:
        bootstrap = stack.enter_context(_kafka(workdir))
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        simulator = stack.enter_context(
            _process(
                [
                    *python, "simulate", "--host", "127.0.0.1", "--port", str(sim_port),
                    "--api-key", _DEMO_KEY, "--speed", str(args.speed),
                ],
                workdir / "simulator.log",
                env,
            )
        )  # fmt: skip
        catalogue = _wait_for(
            f"http://127.0.0.1:{sim_port}/v1/matches", "the simulator", simulator, 30
        )
        _say(f"simulator serving {len(catalogue)} matches at ws://127.0.0.1:{sim_port}/v1/stream")
        daemon_env = {
            **env,
            "SPORTRIX_URL": f"ws://127.0.0.1:{sim_port}/v1/stream",
            "SPORTRIX_API_KEY": _DEMO_KEY,
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "INGESTER_HTTP_PORT": str(http_port),
            "INGESTER_LOG_FORMAT": "text",
            "INGESTER_INSTANCE_ID": "demo",
            "SPORTRIX_PROXY": "none",  # the simulator is local, whatever proxy the shell has
        }
        daemon = stack.enter_context(
            _process([*python, "run"], workdir / "ingester.log", daemon_env)
        )
        _wait_for(f"http://127.0.0.1:{http_port}/healthz", "the ingester", daemon, 60)
        settings = load_settings(kafka_bootstrap_servers=bootstrap)
        matches = _pick_matches(catalogue, args.soccer, args.cricket)
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
                )
            )
        _say("stopping the ingester, the simulator and Kafka...")
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``demo`` sub-command."""
    parser = subparsers.add_parser(
        "demo", help="run Kafka, the simulator and the ingester locally and print the records"
    )
    parser.add_argument("--soccer", type=int, default=3, help="soccer matches to follow")
    parser.add_argument("--cricket", type=int, default=2, help="cricket matches to follow")
    parser.add_argument("--speed", type=float, default=5.0, help="simulated time per second")
    parser.add_argument("--http-port", type=int, default=0, help="the ingester's HTTP port")
    parser.add_argument("--max", type=int, metavar="N", help="stop after N records")
    parser.add_argument(
        "--workdir", default=".local/demo", help="where the broker's data and the logs go"
    )
    parser.set_defaults(handler=_run_demo)
