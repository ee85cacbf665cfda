"""A third sport is one schema and one module: a toy sport, written to a temporary directory
and installed as a plugin (an entry point of ``sportrix_ingester.sports``), runs through the
simulator, the daemon, the data topic and ``sportrix-ingester tail`` as real processes, with
no file of the project edited."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import Daemon, Simulator, Topics, add_matches

REPO_SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
#: The fields every sport's schema starts with (match_id ... start_time).
COMMON_FIELDS = 11

TOY_MODULE = '''
"""Toy: the data shape behind toy.avsc (a plugin sport of the tests)."""
from typing import Any

from typing_extensions import TypedDict

from ingester.convert.common import CommonData


class Points(TypedDict):
    home: int
    away: int


class Data(CommonData):
    points: Points
    rallies: list[str]


SAMPLE: dict[str, Any] = {
    "match_id": 70000, "sport": "toy", "competition": "Toy Cup", "home": "Reds",
    "away": "Blues", "status": "live", "start_time": "2026-11-28T15:00:00Z", "seq": 1,
    "updated_at": "2026-11-28T15:10:00.000Z", "points": {"home": 11, "away": 7},
    "rallies": ["long", "short"],
}


def headline(r: dict[str, Any]) -> str:
    return f"TOY {r['home']} {r['points']['home']}:{r['points']['away']} {r['away']}"
'''


def _toy_schema() -> dict[str, Any]:
    """The common fields (as every schema has them), then the toy's own two."""
    common = json.loads((REPO_SCHEMAS / "soccer.avsc").read_text())["fields"][:COMMON_FIELDS]
    sides = [{"name": side, "type": "int", "doc": f"{side} points"} for side in ("home", "away")]
    points = {"type": "record", "name": "ToyPoints", "doc": "Points per side.", "fields": sides}
    own = [
        {"name": "points", "type": points, "doc": "The score."},
        {"name": "rallies", "type": {"type": "array", "items": "string"}, "doc": "Rallies."},
    ]
    name = {"name": "ToyMatchState", "namespace": "com.example.toy", "doc": "A toy sport."}
    return {"type": "record", **name, "fields": [*common, *own]}


@pytest.fixture
def toy_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The toy sport installed as a plugin: its module, its schema beside it, and the
    distribution metadata naming the entry point (what ``pip install`` would write)."""
    plugin = tmp_path / "plugin"
    plugin.mkdir()
    (plugin / "sportrix_toy.py").write_text(TOY_MODULE)
    (plugin / "toy.avsc").write_text(json.dumps(_toy_schema()))
    dist = plugin / "sportrix_toy-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: sportrix-toy\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[sportrix_ingester.sports]\ntoy = sportrix_toy\n")
    monkeypatch.setenv("PYTHONPATH", str(plugin))  # every child process sees the plugin
    return plugin


async def _tail(bootstrap: str, topic: str, count: int) -> list[str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ingester", "tail", "--from-beginning", "--max", str(count),
        "--kafka-bootstrap-servers", bootstrap, "--topic", topic,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        out, _ = await asyncio.wait_for(process.communicate(), 90)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, out.decode(errors="replace")[-3000:]
    return out.decode().splitlines()


async def test_a_toy_sport_runs_from_simulator_to_tail(
    toy_plugin: Path, tmp_path: Path, bootstrap: str, topics: Topics
) -> None:
    simulator = Simulator(
        tmp_path, "--matches", "toy=3", "--soccer", "0", "--cricket", "0",
        "--update-rate", "5",
    )  # fmt: skip
    daemon = None
    try:
        toys = simulator.matches("toy")
        assert toys == [70000, 70001, 70002], simulator.get("/v1/matches")
        daemon = Daemon(tmp_path, bootstrap, simulator.url, topics)
        await daemon.wait_ready()
        await add_matches(bootstrap, topics.config, toys)
        await daemon.wait_active(toys)
        lines = await _tail(bootstrap, topics.data, 9)
        # Every toy frame became a record: none dead-lettered, all counted as toy frames.
        assert daemon.total("sportrix_ingester_dlq_records_total") == 0
        assert daemon.total("sportrix_ingester_frames_total", sport="toy") >= 9
    finally:
        if daemon is not None:
            daemon.stop()
        simulator.stop()
    assert len(lines) == 9, lines
    for line in lines:
        match_id, op, *_ = line.split()
        assert int(match_id) in toys, line
        assert op in ("snapshot", "update"), line
        assert " TOY Reds 11:7 Blues" in line, line
