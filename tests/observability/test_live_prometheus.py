"""A real Prometheus scrapes a running daemon: every dashboard query returns data.

The daemon (``sportrix-ingester run``) follows a few live matches of the project's simulator and
writes to the session's Kafka broker; one more match id that the simulator does not know makes
the upstream answer with an ``error`` frame (a refusal). A Prometheus server from Debian's
``prometheus`` package (loopback, 1 s scrape and rule evaluation, the chart's alert rules
loaded) scrapes the daemon. Then each panel query of the dashboard, with Grafana's variables
filled in as Grafana would for this job and instance, must return at least one series through
Prometheus' HTTP API, and the rules must load and evaluate without error.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, TypeVar

import pytest
import yaml
from aiokafka import AIOKafkaProducer

from sportrix_devkit.waiting import free_port, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

API_KEY = "obs-live-test-key-3f9c2a"
JOB = "sportrix-ingester"
#: Matches to follow (live ones first), and a match id the simulator does not know.
FOLLOW = 6
UNKNOWN_MATCH_ID = 987_654_321
RATE_WINDOW = "30s"  # Grafana's $__rate_interval for a 1 s scrape is smaller; 30 s is steadier

T = TypeVar("T")


# ----------------------------------------------------------------------------- helpers


def http_get(url: str, timeout: float = 3.0) -> tuple[int, bytes]:
    """Status and body of a GET; (0, b"") when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return int(resp.status), resp.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()
    except (urllib.error.URLError, OSError):
        return 0, b""


class Procs:
    """The processes this test started, with their logs, stopped in reverse order."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.started: list[tuple[str, subprocess.Popen[bytes], Path]] = []

    def start(self, name: str, cmd: list[str], env: dict[str, str] | None = None) -> None:
        log = self.workdir / f"{name}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=self.workdir
            )
        self.started.append((name, proc, log))

    def check_alive(self) -> None:
        for name, proc, _log in self.started:
            if proc.poll() is not None:
                pytest.fail(
                    f"{name} exited with code {proc.returncode}\n{self.tails()}", pytrace=False
                )

    def tails(self, lines: int = 40) -> str:
        out = []
        for name, _proc, log in self.started:
            text = log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
            out.append(f"--- last lines of {name} ({log}) ---\n" + "\n".join(text))
        return "\n".join(out)

    def stop_all(self) -> None:
        for _name, proc, _log in reversed(self.started):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for _name, proc, _log in reversed(self.started):
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def wait_for(
    what: str,
    probe: Callable[[], T | None],
    procs: Procs,
    timeout: float,
    interval: float = 0.5,
    details: Callable[[], str] | None = None,
) -> T:
    """``probe()``'s first truthy result; fails at once when a process exited, and at the
    deadline with ``what`` and ``details()`` (default: the processes' logs)."""

    def alive_then_probe() -> T | None:
        procs.check_alive()
        return probe()

    return wait_until(
        alive_then_probe, what, timeout, interval=interval, details=details or procs.tails
    )


def prom_query(base: str, expr: str) -> list[dict[str, Any]]:
    status, body = http_get(f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
    assert status == 200, f"Prometheus rejected {expr!r}: {status} {body[:300]!r}"
    data = json.loads(body)
    assert data["status"] == "success", data
    result = data["data"]["result"]
    assert isinstance(result, list)
    return result


def values(result: list[dict[str, Any]]) -> list[float]:
    return [float(r["value"][1]) for r in result]


async def _write_commands(bootstrap: str, topic: str, match_ids: list[int]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for match_id in match_ids:
            value = json.dumps({"action": "add", "match_id": match_id}).encode()
            await producer.send_and_wait(topic, value, key=str(match_id).encode())
    finally:
        await producer.stop()


def pick_matches(catalogue: list[dict[str, Any]]) -> list[int]:
    """Up to FOLLOW match ids, live ones first, both sports when there are."""
    rank = {"live": 0, "halftime": 1, "innings_break": 1, "interrupted": 2, "scheduled": 3}
    ordered = sorted(catalogue, key=lambda m: (rank.get(str(m.get("status")), 9), m["match_id"]))
    chosen: list[int] = []
    for sport in sorted({str(m.get("sport")) for m in ordered}):  # the best of each sport first
        chosen.append(next(int(m["match_id"]) for m in ordered if str(m.get("sport")) == sport))
    for m in ordered:
        if len(chosen) >= FOLLOW:
            break
        if int(m["match_id"]) not in chosen:
            chosen.append(int(m["match_id"]))
    return chosen


# ----------------------------------------------------------------------------- the test


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Procs]:
    started = Procs(tmp_path)
    try:
        yield started
    finally:
        started.stop_all()


def start_simulator(procs: Procs, env: dict[str, str]) -> tuple[int, list[dict[str, Any]]]:
    """The simulator's port and its match catalogue."""
    port = free_port()
    procs.start(
        "simulator",
        [sys.executable, "-m", "ingester", "simulate", "--host", "127.0.0.1", "--port", str(port),
         "--api-key", API_KEY],
        env=env,
    )  # fmt: skip

    def catalogue() -> list[dict[str, Any]] | None:
        status, body = http_get(f"http://127.0.0.1:{port}/v1/matches")
        return json.loads(body) if status == 200 else None

    return port, wait_for("the simulator's /v1/matches", catalogue, procs, timeout=60)


def start_daemon(
    procs: Procs, env: dict[str, str], sim_port: int, bootstrap: str
) -> tuple[str, str]:
    """Start ``sportrix-ingester run`` on unique topics; its instance and config topic."""
    suffix = uuid.uuid4().hex[:10]
    config_topic = f"obs-live-config-{suffix}"
    http_port = free_port()
    env = {
        **env,
        "SPORTRIX_URL": f"ws://127.0.0.1:{sim_port}/v1/stream",
        "SPORTRIX_API_KEY": API_KEY,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "INGESTER_TOPIC": f"obs-live-scores-{suffix}",
        "INGESTER_CONFIG_TOPIC": config_topic,
        "INGESTER_DLQ_TOPIC": f"obs-live-dlq-{suffix}",
        "INGESTER_GROUP_ID": f"obs-live-{suffix}",
        "INGESTER_INSTANCE_ID": "obs-live",
        "INGESTER_HTTP_HOST": "127.0.0.1",
        "INGESTER_HTTP_PORT": str(http_port),
        "INGESTER_LOG_FORMAT": "json",
    }
    procs.start("daemon", [sys.executable, "-m", "ingester", "run"], env=env)
    wait_for(
        "the daemon's /readyz to answer 200 (nothing followed yet)",
        lambda: http_get(f"http://127.0.0.1:{http_port}/readyz")[0] == 200,
        procs,
        timeout=120,
    )
    return f"127.0.0.1:{http_port}", config_topic


def start_prometheus(
    procs: Procs, env: dict[str, str], binary: Path, workdir: Path, instance: str, rules: Path
) -> str:
    """Prometheus scraping ``instance`` every second with ``rules`` loaded; its base URL."""
    port = free_port()
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(rules)],
        "scrape_configs": [{"job_name": JOB, "static_configs": [{"targets": [instance]}]}],
    }
    config_path = workdir / "prometheus.yml"
    config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
    procs.start(
        "prometheus",
        [str(binary), f"--config.file={config_path}", f"--storage.tsdb.path={workdir / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
        env=env,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    wait_for("Prometheus to be ready", lambda: http_get(f"{base}/-/ready")[0] == 200, procs, 60)

    def target_up() -> bool:
        status, body = http_get(f"{base}/api/v1/targets")
        if status != 200:
            return False
        targets = json.loads(body)["data"]["activeTargets"]
        return any(t["labels"].get("instance") == instance and t["health"] == "up" for t in targets)

    wait_for(f"Prometheus to scrape {instance} successfully", target_up, procs, timeout=60)
    return base


def test_every_panel_query_returns_data(
    kafka: Any,
    procs: Procs,
    tmp_path: Path,
    prometheus_bin: Path,
    dashboard_queries: list[Any],
    obs: SimpleNamespace,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SPORTRIX_", "INGESTER_"))}
    sim_port, matches = start_simulator(procs, env)
    follow = pick_matches(matches)
    assert follow, f"the simulator lists no match: {matches!r}"
    assert UNKNOWN_MATCH_ID not in {int(m["match_id"]) for m in matches}
    instance, config_topic = start_daemon(procs, env, sim_port, kafka.bootstrap_servers)
    # Follow the matches, and one the upstream will refuse.
    asyncio.run(_write_commands(kafka.bootstrap_servers, config_topic, [*follow, UNKNOWN_MATCH_ID]))
    prom = start_prometheus(procs, env, prometheus_bin, tmp_path, instance, obs.RULES_PATH)

    # Every panel query returns data, and the data path really carries records.
    instance_re = re.escape(instance).replace("\\", "\\\\")  # a regex inside a PromQL string
    queries = {
        f"panel {q.panel_id} {q.title!r} {q.ref_id}": obs.substitute(
            q.expr, job=JOB, instance=instance_re, rate=RATE_WINDOW
        )
        for q in dashboard_queries
    }
    sel = f'job="{JOB}", instance="{instance}"'
    checks = {
        "records are produced": f"sum(rate(sportrix_ingester_records_produced_total{{{sel}}}[1m]))",
        "the unknown match is refused (error frame by code)": (
            f'sum(sportrix_ingester_error_frames_total{{{sel}, code!=""}})'
        ),
    }
    empty: list[str] = []

    def all_answer() -> bool:
        empty.clear()
        empty.extend(name for name, expr in queries.items() if not prom_query(prom, expr))
        empty.extend(
            name
            for name, expr in checks.items()
            if not any(v > 0 for v in values(prom_query(prom, expr)))
        )
        return not empty

    def still_empty() -> str:
        _, status_body = http_get(f"http://{instance}/status")
        return (
            "these dashboard queries still return no data (or checks fail):\n  "
            + "\n  ".join(f"{n}: {queries.get(n) or checks[n]}" for n in empty)
            + f"\n/status: {status_body[:2000]!r}\n{procs.tails()}"
        )

    wait_for("every dashboard query to return data", all_answer, procs, 180, 1, still_empty)

    # The lag quantile is a real number once records flow.
    lag = values(prom_query(prom, queries[next(n for n in queries if "'Lag p99'" in n)]))
    assert any(math.isfinite(v) for v in lag), f"lag p99 is {lag}"
    check_rules_in_prometheus(prom, procs, obs.RULES_PATH)


def check_rules_in_prometheus(prom: str, procs: Procs, rules_path: Path) -> None:
    """The alert rules loaded into the real server, evaluate without error, and none fires."""

    def rules_evaluated() -> list[dict[str, Any]] | None:
        status, body = http_get(f"{prom}/api/v1/rules")
        if status != 200:
            return None
        groups = json.loads(body)["data"]["groups"]
        rules = [r for g in groups for r in g["rules"]]
        never = "0001-01-01"  # Prometheus' lastEvaluation before the first evaluation
        evaluated = all(not r.get("lastEvaluation", never).startswith(never) for r in rules)
        return rules if rules and evaluated else None

    rules = wait_for("the alert rules to be evaluated", rules_evaluated, procs, timeout=30)
    bad = {r["name"]: r.get("lastError") for r in rules if r.get("health") != "ok"}
    assert not bad, f"alert rules failing in Prometheus: {bad}"
    in_file = [r for g in yaml.safe_load(rules_path.read_text())["groups"] for r in g["rules"]]
    assert len(rules) == len(in_file)
    # A healthy run: the refusal of the unknown match is no alert, and the fresh instance is
    # too young for NothingProduced; nothing may fire.
    firing = prom_query(prom, 'ALERTS{alertstate="firing"}')
    assert not firing, f"alerts fire during a healthy run: {[a['metric'] for a in firing]}"
