"""The benchmark runs end to end at a tiny scale and writes its JSON, Markdown and PNG.

Nothing here is about speed: only that every number is present and sane.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = [sys.executable, "-m", "ingester", "bench"]
TINY = ["--soccer", "8", "--cricket", "2", "--update-rate", "5", "--warmup", "1"]


def run_bench(kafka: object, out: Path, *args: str) -> dict[str, object]:
    bootstrap = kafka.bootstrap_servers  # type: ignore[attr-defined]
    command = [*BENCH, *args, "--kafka", bootstrap, "--out", str(out), *TINY]
    done = subprocess.run(command, check=False, capture_output=True, text=True, timeout=170)
    assert done.returncode == 0, done.stderr[-4000:]
    scenario = args[0]
    for suffix in ("json", "md", "png"):
        assert (out / f"bench-{scenario}.{suffix}").stat().st_size > 0
    assert "| measure | value |" in done.stdout
    result: dict[str, object] = json.loads((out / f"bench-{scenario}.json").read_text())
    return result


@pytest.mark.timeout(180)
def test_throughput_scenario_measures_the_ingester_and_its_ceilings(
    kafka: object, tmp_path: Path
) -> None:
    result = run_bench(kafka, tmp_path, "throughput", "--duration", "3", "--ceiling-seconds", "1")
    ingester = result["ingester"]
    assert isinstance(ingester, dict)
    for name in ("frames_per_s", "records_per_s", "cpu_s_per_1000_frames", "peak_rss_mb"):
        assert ingester[name] > 0, name
    lag = ingester["lag_ms"]
    assert 0 <= lag["p50"] <= lag["p95"] <= lag["p99"] <= lag["max"]
    ceilings = result["ceilings"]
    assert isinstance(ceilings, dict)
    assert len(ceilings) == 4
    assert all(rate > 0 for rate in ceilings.values())
    assert result["ratio_to_slowest_ceiling"] > 0  # type: ignore[operator]
    bound = result["serial_bound"]
    assert isinstance(bound, dict)
    assert set(bound["cpu_us_per_frame"]) == {
        "websocket client",
        "hot path",
        "aiokafka send_batch()",
    }
    assert all(us > 0 for us in bound["cpu_us_per_frame"].values())
    assert bound["frames_per_s"] == pytest.approx(1e6 / sum(bound["cpu_us_per_frame"].values()))
    assert result["ratio_to_serial_bound"] > 0  # type: ignore[operator]
    assert result["timeline"]
    simulator = result["simulator"]
    assert isinstance(simulator, dict)
    # CPU time comes in 10 ms ticks: a tiny run may read 0, never less.
    assert simulator["cpu_utilisation"] >= 0
    assert simulator["cpu_s_per_1000_frames"] >= 0
    report = (tmp_path / "bench-throughput.md").read_text()
    assert "| simulator CPU utilisation" in report
    # The ingester's produce stages come from its /metrics over the window.
    stages = ingester["stages_ms"]
    assert set(stages) == {"processed", "queued", "batched", "acknowledged"}
    assert all(0 <= stage["p50"] <= stage["p99"] for stage in stages.values())
    assert all(stage["records"] > 0 for stage in stages.values())
    # The naive bridge ran on the same load, into its own topic, and is compared.
    bridge = result["bridge"]
    assert isinstance(bridge, dict)
    for name in ("frames_per_s", "records_per_s", "cpu_s_per_1000_frames"):
        assert bridge[name] > 0, name
    assert 0 <= bridge["lag_ms"]["p50"] <= bridge["lag_ms"]["p99"]
    for row in (ingester, bridge):
        assert row["ratio_to_websocket_client"] > 0
    assert "| naive bridge |" in report
    assert "| bare websockets client (ceiling) |" in report


@pytest.mark.timeout(120)
def test_scale_scenario_times_the_recovery_after_a_mass_drop(kafka: object, tmp_path: Path) -> None:
    result = run_bench(
        kafka, tmp_path, "scale", "--duration", "1", "--drops", "1",
        "--max-subscriptions", "3", "--per-connection", "3",
    )  # fmt: skip
    scale = result["scale"]
    assert isinstance(scale, dict)
    # 8 of the 10 matches are live at start-up; a scheduled one may kick off before the
    # bench reads the listing. Every followed match must have come back after the drop.
    assert 8 <= result["followed"] <= 9  # type: ignore[operator]
    assert len(scale["recovery_s"]) == 1
    assert 0 < scale["recovery_s"][0] < 60
    assert scale["peak_rss_mb"] > 0


@pytest.mark.timeout(120)
def test_replicas_share_the_matches_and_are_measured_together(
    kafka: object, tmp_path: Path
) -> None:
    result = run_bench(
        kafka,
        tmp_path,
        "throughput",
        "--duration",
        "2",
        "--no-ceilings",
        "--no-bridge",
        "--replicas",
        "2",
    )
    replicas = result["replicas"]
    assert isinstance(replicas, dict)
    assert set(replicas) == {"bench-0", "bench-1"}
    # The consumer group shared the config topic's 12 partitions between the two, and every
    # followed match is active on exactly one of them.
    owned = [replica["config_partitions"] for replica in replicas.values()]
    assert min(owned) > 0
    assert sum(owned) == 12
    assert sum(replica["active"] for replica in replicas.values()) == result["followed"]
    for replica in (0, 1):
        assert (tmp_path / f"ingester-{replica}.log").exists()
    ingester = result["ingester"]
    assert isinstance(ingester, dict)
    assert ingester["records_per_s"] > 0
    assert "ratio_to_serial_bound" not in result  # a one-process bound
    assert "bridge" not in result
    assert ingester["ratio_to_websocket_client"] > 0  # the bare client runs without ceilings
    assert "| ingester replicas" in (tmp_path / "bench-throughput.md").read_text()
