"""Turning a run's measurements into numbers, a Markdown table and a PNG."""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sportrix_devkit.bench.topic import Appended

__all__ = ["lag_summary", "markdown", "percentile", "plot", "stage_quantiles", "timeline"]

_STAGE_BUCKET = re.compile(
    r'^sportrix_ingester_produce_stage_seconds_bucket\{(?=.*stage="(\w+)")(?=.*le="([^"]+)").*\} '
    r"([0-9.eE+-]+)$",
    re.MULTILINE,
)


def percentile(values: Sequence[float], fraction: float) -> float:
    """The ``fraction`` quantile of sorted ``values`` (nearest rank); 0 when empty."""
    if not values:
        return 0.0
    rank = max(0, math.ceil(fraction * len(values)) - 1)
    return float(values[rank])


def lag_summary(records: Sequence[Appended], start_ms: int, end_ms: int) -> dict[str, Any]:
    """Records appended in ``[start_ms, end_ms)``: count, rate and lag percentiles (ms)."""
    lags = sorted(
        r.append_ms - r.updated_ms
        for r in records
        if start_ms <= r.append_ms < end_ms and r.updated_ms is not None
    )
    count = sum(1 for r in records if start_ms <= r.append_ms < end_ms)
    upstream = sorted(
        r.received_ms - r.updated_ms
        for r in records
        if start_ms <= r.append_ms < end_ms and r.updated_ms is not None
    )
    inside = sorted(
        r.append_ms - r.received_ms for r in records if start_ms <= r.append_ms < end_ms
    )
    return {
        "records": count,
        "records_per_s": count / ((end_ms - start_ms) / 1000) if end_ms > start_ms else 0.0,
        "lag_ms": {
            "p50": percentile(lags, 0.50),
            "p95": percentile(lags, 0.95),
            "p99": percentile(lags, 0.99),
            "max": float(lags[-1]) if lags else 0.0,
        },
        "lag_split_ms": {
            "upstream_p50": percentile(upstream, 0.5),
            "upstream_p99": percentile(upstream, 0.99),
            "ingester_to_broker_p50": percentile(inside, 0.5),
            "ingester_to_broker_p99": percentile(inside, 0.99),
        },
    }


def _stage_buckets(texts: Sequence[str]) -> dict[str, dict[float, float]]:
    """Cumulative bucket counts by stage and bound, summed over the ``/metrics`` texts."""
    counts: dict[str, dict[float, float]] = defaultdict(lambda: defaultdict(float))
    for text in texts:
        for stage, bound, value in _STAGE_BUCKET.findall(text):
            counts[stage][float(bound)] += float(value)
    return counts


def _bucket_quantile(cumulative: list[tuple[float, float]], fraction: float) -> float:
    """The ``fraction`` quantile of a histogram given as sorted ``(bound, cumulative count)``,
    interpolated inside its bucket as Prometheus' ``histogram_quantile`` does."""
    total = cumulative[-1][1] if cumulative else 0.0
    if total <= 0:
        return 0.0
    rank = fraction * total
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in cumulative:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            share = (rank - lower_count) / (count - lower_count) if count > lower_count else 1.0
            return lower_bound + (bound - lower_bound) * share
        lower_bound, lower_count = bound, count
    return lower_bound


def stage_quantiles(before: Sequence[str], after: Sequence[str]) -> dict[str, dict[str, float]]:
    """p50/p99 (ms) of each produce stage over a window, from the daemons' ``/metrics``
    texts at its start and end (``produce_stage_seconds``, summed over replicas)."""
    start, end = _stage_buckets(before), _stage_buckets(after)
    out = {}
    for stage, bounds in end.items():
        cumulative = sorted((b, c - start.get(stage, {}).get(b, 0.0)) for b, c in bounds.items())
        out[stage] = {
            "p50": _bucket_quantile(cumulative, 0.5) * 1000,
            "p99": _bucket_quantile(cumulative, 0.99) * 1000,
            "records": cumulative[-1][1] if cumulative else 0.0,
        }
    return out


def timeline(records: Sequence[Appended], start_ms: int, end_ms: int) -> list[dict[str, float]]:
    """Per second from ``start_ms``: records appended and their lag p50/p99/max (ms)."""
    seconds = max(1, (end_ms - start_ms) // 1000)
    buckets: list[list[int]] = [[] for _ in range(seconds)]
    for r in records:
        index = (r.append_ms - start_ms) // 1000
        if 0 <= index < seconds and r.updated_ms is not None:
            buckets[index].append(r.append_ms - r.updated_ms)
    rows = []
    for index, lags in enumerate(buckets):
        lags.sort()
        rows.append(
            {
                "t": float(index),
                "records": float(len(lags)),
                "lag_p50_ms": percentile(lags, 0.5),
                "lag_p99_ms": percentile(lags, 0.99),
                "lag_max_ms": float(lags[-1]) if lags else 0.0,
            }
        )
    return rows


def markdown(result: dict[str, Any]) -> str:
    """A Markdown table of one run's headline numbers."""
    scenario = result["scenario"]
    rows: list[tuple[str, str]] = [
        (
            "scenario",
            f"{scenario['name']}: {result['followed']} matches x {scenario['update_rate']:g} "
            f"frames/s, {scenario['duration']:g} s after {scenario['warmup']:g} s warm-up",
        )
    ]
    replicas = scenario.get("replicas", 1)
    if replicas > 1:
        shares = " + ".join(str(share["active"]) for share in result["replicas"].values())
        rows.append(
            (
                "ingester replicas (active matches each; CPU summed, RSS of the highest peak)",
                f"{replicas} ({shares})",
            )
        )
    ingester = result.get("ingester")
    if ingester:
        lag = ingester["lag_ms"]
        rows += [
            ("frames/s sent (simulator)", f"{ingester['frames_per_s']:,.0f}"),
            ("records/s appended (topic)", f"{ingester['records_per_s']:,.0f}"),
            (
                "lag p50 / p95 / p99 / max (ms)",
                f"{lag['p50']:.0f} / {lag['p95']:.0f} / {lag['p99']:.0f} / {lag['max']:.0f}",
            ),
            (
                "lag split p50/p99 (ms): updated_at→received_at; received_at→append",
                "{upstream_p50:.0f}/{upstream_p99:.0f}; "
                "{ingester_to_broker_p50:.0f}/{ingester_to_broker_p99:.0f}".format(
                    **ingester["lag_split_ms"]
                ),
            ),
            *_stage_rows(ingester),
            ("ingester CPU s per 1,000 frames", f"{ingester['cpu_s_per_1000_frames']:.3f}"),
            ("ingester CPU utilisation", f"{ingester['cpu_utilisation']:.0%}"),
            ("ingester peak RSS (MB)", f"{ingester['peak_rss_mb']:.0f}"),
        ]
    simulator = result.get("simulator")
    if simulator:
        rows.append(
            (
                "simulator CPU utilisation (CPU s per 1,000 frames)",
                f"{simulator['cpu_utilisation']:.0%} ({simulator['cpu_s_per_1000_frames']:.3f})",
            )
        )
    for name, rate in result.get("ceilings", {}).items():
        rows.append((f"ceiling: {name} (/s)", f"{rate:,.0f}"))
    if "ratio_to_slowest_ceiling" in result:
        rows.append(
            (
                f"ingester / slowest ceiling ({result['slowest_ceiling']})",
                f"{result['ratio_to_slowest_ceiling']:.2f}",
            )
        )
    bound = result.get("serial_bound")
    if bound:
        costs = " + ".join(f"{us:.0f}" for us in bound["cpu_us_per_frame"].values())
        rows.append(
            (
                "serial bound: one core, client + hot path + send_batch() CPU µs/frame",
                f"{costs} µs → {bound['frames_per_s']:,.0f} frames/s",
            )
        )
    if "ratio_to_serial_bound" in result:
        rows.append(("ingester / serial bound", f"{result['ratio_to_serial_bound']:.2f}"))
    scale = result.get("scale")
    if scale:
        rows += [
            ("all active after start (s)", f"{scale['initial_active_s']:.1f}"),
            (
                "all active again after a mass drop (s)",
                ", ".join(f"{s:.1f}" for s in scale["recovery_s"]),
            ),
            ("ingester peak RSS (MB)", f"{scale['peak_rss_mb']:.0f}"),
            ("ingester RSS at the end (MB)", f"{scale['rss_mb']:.0f}"),
        ]
    lines = ["| measure | value |", "| --- | --- |"]
    lines += [f"| {name} | {value} |" for name, value in rows]
    return "\n".join(lines) + "\n" + _comparison(result)


def _stage_rows(ingester: dict[str, Any]) -> list[tuple[str, str]]:
    stages = ingester.get("stages_ms")
    if not stages:
        return []
    names = [name for name in ("processed", "queued", "batched", "acknowledged") if name in stages]
    return [
        (
            "inside the ingester p50/p99 (ms): " + "; ".join(names),
            "; ".join(f"{stages[n]['p50']:.1f}/{stages[n]['p99']:.1f}" for n in names),
        )
    ]


def _comparison(result: dict[str, Any]) -> str:
    """The ingester, the naive bridge and the bare client side by side (a second table)."""
    client = result.get("websocket_client")
    if not client or "ingester" not in result:
        return ""
    lines = [
        "",
        "| | frames/s | / bare client | lag p50 (ms) | lag p99 (ms) | CPU s per 1,000 frames "
        "| load average |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for label, key in (("sportrix-ingester", "ingester"), ("naive bridge", "bridge")):
        row = result.get(key)
        if row:
            lines.append(
                f"| {label} | {row['frames_per_s']:,.0f} "
                f"| {row.get('ratio_to_websocket_client', 0.0):.2f} "
                f"| {row['lag_ms']['p50']:.0f} | {row['lag_ms']['p99']:.0f} "
                f"| {row['cpu_s_per_1000_frames']:.3f} | {row['load_average']:.1f} |"
            )
    lines.append(
        f"| bare websockets client (ceiling) | {client['frames_per_s']:,.0f} | 1.00 | - | - "
        f"| {client['cpu_s_per_1000_frames']:.3f} | {client['load_average']:.1f} |"
    )
    return "\n".join(lines) + "\n"


def plot(result: dict[str, Any], path: Path) -> None:
    """Throughput and lag over time as one small PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["timeline"]
    t = [row["t"] for row in rows]
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(7, 5), sharex=True, dpi=90)
    top.plot(t, [row["records"] for row in rows], label="records appended/s")
    top.plot(t, [row.get("frames_sent", 0.0) for row in rows], label="frames sent/s", alpha=0.7)
    top.set_ylabel("per second")
    top.legend(loc="lower right")
    top.set_title(result["scenario"]["name"])
    for key, label in (("lag_p50_ms", "p50"), ("lag_p99_ms", "p99"), ("lag_max_ms", "max")):
        bottom.plot(t, [row[key] for row in rows], label=f"lag {label}")
    bottom.set_ylabel("lag (ms)")
    bottom.set_xlabel("seconds into the measured window")
    bottom.legend(loc="upper right")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
