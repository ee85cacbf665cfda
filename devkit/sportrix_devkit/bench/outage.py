"""``bench outage``: the broker stopped under load for ``--outage`` seconds, then started again.

A LocalKafka of the run's own (stopped and started again on the same data), the simulator
and the daemon with a disk spool (``INGESTER_SPOOL_DIR`` in ``--out``; ``--no-spool`` for the
row without). After the outage: the backlog's drain while new frames keep coming, then every
match is finished at the simulator and the topic is read back and judged per match with
:class:`~sportrix_devkit.bench.ledger.MatchLedger` against what the simulator sent.
``--kill-at S`` kills the daemon with SIGKILL S seconds into the outage and starts it again
at once on the same spool directory. Writes ``bench-outage.json`` and ``.md`` to ``--out``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import shutil
import signal
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import uvloop
from aiokafka import ConsumerRecord

from sportrix_devkit.bench.ledger import Row, frame_of, group
from sportrix_devkit.bench.processes import SimulatorProcess, http_get, memory_mb, metric_value
from sportrix_devkit.bench.scenarios import (
    Options,
    _ceilings,
    _followed,
    _Ingester,
    _say,
    _simulator,
    _start_fleet,
    machine,
)
from sportrix_devkit.bench.topic import read_records
from sportrix_devkit.waiting import wait_until_async

__all__ = ["markdown", "run"]

_SAMPLED = (
    "spool_records",
    "spool_bytes",
    "buffered_records",
    "upstream_paused",
    "upstream_pauses_total",
    "upstream_reconnects_total",
    "records_produced_total",
)


def run(options: Options) -> dict[str, Any]:
    """Run the outage scenario; write ``bench-outage.json|.md`` to ``options.out``."""
    options.out.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    result = uvloop.run(_measure(options))
    stem = options.out / "bench-outage"
    Path(f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    Path(f"{stem}.md").write_text(markdown(result))
    return result


@contextlib.asynccontextmanager
async def _broker() -> AsyncIterator[Any]:
    """A LocalKafka of the run's own: the scenario stops it and starts it again."""
    from sportrix_devkit.localkafka import LocalKafka

    with tempfile.TemporaryDirectory(prefix="bench-outage-kafka-") as data_dir:
        broker = LocalKafka(data_dir, heap="1g", quick_start=False)
        await asyncio.to_thread(broker.start)
        try:
            yield broker
        finally:
            await asyncio.to_thread(broker.stop)


def _sample(daemon: _Ingester) -> dict[str, float]:
    """The figures of :data:`_SAMPLED` from ``/metrics`` (0 for a family the daemon lacks)."""
    text = daemon.metrics()
    values = {}
    for name in _SAMPLED:
        if name in ("upstream_reconnects_total", "records_produced_total"):  # labelled
            prefix = f"sportrix_ingester_{name}{{"
            values[name] = sum(
                float(line.rsplit(" ", 1)[1])
                for line in text.splitlines()
                if line.startswith(prefix)
            )
        else:
            values[name] = metric_value(text, f"sportrix_ingester_{name}") or 0.0
    return values


@dataclass
class _Outage:
    """What the outage phase saw: peaks, and the kill's figures when there was one."""

    peak_rss_mb: float = 0.0
    peak: dict[str, float] = field(default_factory=dict)
    paused_seen: bool = False
    kill: dict[str, float] = field(default_factory=dict)


async def _measure(options: Options) -> dict[str, Any]:
    if options.kafka or os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        raise SystemExit("bench outage stops its own broker: run it without --kafka")
    result: dict[str, Any] = {
        "scenario": {
            "name": "outage",
            **{
                k: v
                for k, v in vars(options).items()
                if k not in ("out", "scenario", "simulated", "ceilings", "bridge", "profile")
            },
            **options.simulated,
        },
        "machine": machine(),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    result["scenario"]["out"] = str(options.out)
    async with _broker() as broker:
        # The bare client's rate on the same simulator settings: the ratio's denominator.
        await _ceilings(replace(options, ceilings=False), broker.bootstrap_servers, result)
        await _outage(options, broker, result)
    return result


async def _outage(options: Options, broker: Any, result: dict[str, Any]) -> None:  # noqa: PLR0915
    spool = options.out / "spool"
    shutil.rmtree(spool, ignore_errors=True)
    env = dict(options.daemon_env)
    if options.spool:
        env.setdefault("INGESTER_SPOOL_DIR", str(spool))
    options = replace(options, daemon_env=env, replicas=1)
    _say("the ingester: waiting until every match is active")
    sim = _simulator(options, "simulator.log")
    fleet = None
    daemons: list[_Ingester] = []
    try:
        ids = _followed(options, sim.catalogue)
        result["followed"] = len(ids)
        fleet, result["initial_active_s"] = await _start_fleet(
            options, broker.bootstrap_servers, sim, ids
        )
        daemon = fleet.daemons[0]
        daemons.append(daemon)
        await asyncio.sleep(options.warmup)
        steady_buffered = max(_sample(daemon)["buffered_records"], 100.0)
        rss_before = memory_mb(daemon.pid)[0]
        before = _sample(daemon)
        frames0, t0 = sim.frames_sent(), time.monotonic()
        _say(f"Kafka down for {options.outage:g} s")
        await asyncio.to_thread(broker.stop)
        seen = _Outage(peak_rss_mb=rss_before)
        while (elapsed := time.monotonic() - t0) < options.outage:
            if options.kill_at is not None and not seen.kill and elapsed >= options.kill_at:
                seen.kill = {**_sample(daemon), "at_s": elapsed}
                _say(f"kill -9 of the daemon {elapsed:.0f} s into the outage; restarting it")
                os.kill(daemon.pid, signal.SIGKILL)
                await asyncio.to_thread(daemon.proc.wait)
                daemon = _Ingester(
                    options, broker.bootstrap_servers, sim.url, fleet.topic, len(ids), 1
                )
                daemons.append(daemon)
                await wait_until_async(
                    functools.partial(_sample, daemon), "the restarted daemon's /metrics", 60,
                    retry_on=(OSError,),
                )  # fmt: skip
                seen.kill["spool_records_at_restart"] = _sample(daemon)["spool_records"]
            with contextlib.suppress(OSError):
                now = _sample(daemon)
                for name, value in now.items():
                    seen.peak[name] = max(seen.peak.get(name, 0.0), value)
                seen.paused_seen |= now["upstream_paused"] == 1
            seen.peak_rss_mb = max(seen.peak_rss_mb, memory_mb(daemon.pid)[0])
            await asyncio.sleep(1.0)
        frames_during = sim.frames_sent() - frames0
        _say("Kafka back; draining the backlog")
        await asyncio.to_thread(broker.start_again)
        up = _sample(daemon)
        backlog = up["spool_records"] + up["buffered_records"]
        frames1, t1 = sim.frames_sent(), time.monotonic()
        drained = daemon
        await wait_until_async(
            lambda: (
                (s := _sample(drained))["spool_records"] == 0
                and s["buffered_records"] <= 2 * steady_buffered
            ),
            "the backlog to drain", max(600.0, options.outage * 2), interval=0.5,
            retry_on=(OSError,),
        )  # fmt: skip
        drain_s = max(time.monotonic() - t1, 1e-3)
        after = _sample(daemon)
        incoming = (sim.frames_sent() - frames1) / drain_s
        produced = (after["records_produced_total"] - up["records_produced_total"]) / drain_s
        rss_after = memory_mb(daemon.pid)[0]
        _say("finishing every match; waiting until the daemon has flushed each last frame")
        for match_id in ids:
            sim.get_raw(f"/_sim/finish?match_id={match_id}")
        await wait_until_async(
            lambda: _flushed(drained, sim, ids), "every last frame flushed", 600, interval=1.0,
            retry_on=(OSError,),
        )  # fmt: skip
        final = _sample(daemon)
        sent = _sent(sim, ids)
    finally:
        for restarted_daemon in daemons[1:]:
            restarted_daemon.stop()
        if fleet is not None:
            fleet.stop()
        sim.stop()
    _say("reading the topic back")
    rows = await read_records(broker.bootstrap_servers, fleet.topic, options.partitions, _row)
    books = group(rows)
    distinct = {m: b.distinct() for m, b in books.items()}
    lost = {m: n - distinct.get(m, 0) for m, n in sent.items() if n > distinct.get(m, 0)}
    outage_rate = frames_during / options.outage
    result["outage"] = {
        "outage_s": options.outage,
        "spool": options.spool,
        "frames_sent": sum(sent.values()),
        "records_in_topic": len(rows),
        "distinct_frames_in_topic": sum(distinct.values()),
        "frames_lost": sum(lost.values()),
        "matches_with_losses": len(lost),
        "duplicates": len(rows) - sum(distinct.values()),
        "order_violations": sum(len(b.out_of_order()) for b in books.values()),
        "seqs_skipped_inside_matches": sum(b.missing() for b in books.values()),
        "replayed_header_records": sum(sum(b.replayed) for b in books.values()),
        "incoming_frames_per_s_during_outage": outage_rate,
        "reading_paused": seen.paused_seen or final["upstream_pauses_total"] > 0,
        "pauses": final["upstream_pauses_total"],
        "reconnects_during_outage": final["upstream_reconnects_total"]
        - before["upstream_reconnects_total"]
        if not seen.kill
        else None,
        "rss_mb_before": rss_before,
        "rss_mb_peak": seen.peak_rss_mb,
        "rss_mb_after_drain": rss_after,
        "spool_peak_bytes": seen.peak.get("spool_bytes", 0.0),
        "spool_peak_records": seen.peak.get("spool_records", 0.0),
        "backlog_at_recovery": backlog,
        "drain_s": drain_s,
        "produced_per_s_while_draining": produced,
        "incoming_frames_per_s_while_draining": incoming,
        "drain_ratio_to_incoming": produced / incoming if incoming else None,
        "kill": seen.kill or None,
    }
    client = result.get("websocket_client", {}).get("frames_per_s")
    if client:
        result["outage"]["drain_ratio_to_websocket_client"] = produced / client


def _row(record: ConsumerRecord[Any, Any]) -> Row | None:
    """A data record as the ledger takes it."""
    if not record.value or not record.key:
        return None
    headers = dict(record.headers)
    frame, received_at = frame_of(record.value)
    return (
        int(record.key),
        frame,
        headers.get("producer", b""),
        headers.get("replayed") == b"1",
        received_at,
    )


def _sent(sim: SimulatorProcess, ids: list[int]) -> dict[int, int]:
    """Frames the simulator wrote to the daemon's connections, per match."""
    stats = json.loads(sim.get_raw("/_sim/stats"))["matches"]
    return {m: stats[str(m)]["snapshots_sent"] + stats[str(m)]["updates_sent"] for m in ids}


def _flushed(daemon: _Ingester, sim: SimulatorProcess, ids: list[int]) -> bool:
    """The daemon has each match's last frame and nothing left to produce. A match missing
    from ``/status`` was retired (over for ``INGESTER_RETIRE_AFTER``): it had its last."""
    sample = _sample(daemon)
    if sample["spool_records"] or sample["buffered_records"]:
        return False
    stats = json.loads(sim.get_raw("/_sim/stats"))["matches"]
    status = json.loads(http_get(f"http://127.0.0.1:{daemon.http_port}/status", 10))
    seqs = {m["match_id"]: m.get("last_seq") for m in status["matches"]}
    return all(seqs.get(m, stats[str(m)]["last_seq"]) == stats[str(m)]["last_seq"] for m in ids)


def markdown(result: dict[str, Any]) -> str:
    """The outage run's figures as a Markdown table."""
    o = result["outage"]
    s = result["scenario"]
    kill = o["kill"]
    rows = [
        (
            "scenario",
            f"{result['followed']} matches x {s['update_rate']:g} frames/s, Kafka down "
            f"{o['outage_s']:g} s, spool {'on' if o['spool'] else 'off'}"
            + (f", kill -9 at {kill['at_s']:.0f} s" if kill else ""),
        ),
        ("incoming frames/s during the outage", f"{o['incoming_frames_per_s_during_outage']:,.0f}"),
        ("frames sent by the simulator", f"{o['frames_sent']:,}"),
        ("distinct frames in the topic", f"{o['distinct_frames_in_topic']:,}"),
        ("frames lost (matches with losses)", f"{o['frames_lost']:,} ({o['matches_with_losses']})"),
        ("duplicate records", f"{o['duplicates']:,}"),
        ("per-match order violations", f"{o['order_violations']:,}"),
        ("seqs skipped inside a match", f"{o['seqs_skipped_inside_matches']:,}"),
        ("records with the replayed header", f"{o['replayed_header_records']:,}"),
        ("reading paused (pauses)", f"{'yes' if o['reading_paused'] else 'no'} ({o['pauses']:g})"),
        (
            "daemon RSS before / peak / after the drain (MB)",
            f"{o['rss_mb_before']:.0f} / {o['rss_mb_peak']:.0f} / {o['rss_mb_after_drain']:.0f}",
        ),
        (
            "spool peak (MB, records)",
            f"{o['spool_peak_bytes'] / 1e6:,.1f}, {o['spool_peak_records']:,.0f}",
        ),
        ("backlog at recovery (records)", f"{o['backlog_at_recovery']:,.0f}"),
        (
            "drain: seconds, records/s produced, frames/s incoming",
            f"{o['drain_s']:.1f} s, {o['produced_per_s_while_draining']:,.0f}, "
            f"{o['incoming_frames_per_s_while_draining']:,.0f}",
        ),
        (
            "drain rate / incoming rate",
            f"{o['drain_ratio_to_incoming']:.1f}x" if o["drain_ratio_to_incoming"] else "n/a",
        ),
    ]
    if o["reconnects_during_outage"] is not None:
        rows.append(("upstream reconnects", f"{o['reconnects_during_outage']:g}"))
    client = result.get("websocket_client")
    if client:
        rows.append(("bare websocket client (frames/s)", f"{client['frames_per_s']:,.0f}"))
    if "drain_ratio_to_websocket_client" in o:
        rows.append(
            ("drain rate / bare client's rate", f"{o['drain_ratio_to_websocket_client']:.2f}")
        )
    if kill:
        rows.append(
            (
                "at the kill: spool records, buffered records; spool records at restart",
                f"{kill['spool_records']:,.0f}, {kill['buffered_records']:,.0f}; "
                f"{kill.get('spool_records_at_restart', 0):,.0f}",
            )
        )
    lines = ["| measure | value |", "| --- | --- |"]
    lines += [f"| {name} | {value} |" for name, value in rows]
    return "\n".join(lines) + "\n"
