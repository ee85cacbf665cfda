"""The two benchmark scenarios, run against real processes over loopback.

``throughput``: the ceilings (bare client; hot path and bare producer unless
``--no-ceilings``), the naive bridge (unless ``--no-bridge``), then the ingester following
every live match while the simulator plays them at ``update_rate``, each on a fresh simulator
with the same seed; everything is measured from the outside (simulator stats, ``/proc``, the
topic's append times), and the ingester's produce stages from its ``/metrics``.
``scale``: many matches at a low rate over several connections; peak RSS and the time from
a mass disconnect (``/_sim/drop``) until every match is active again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import uvloop

from sportrix_devkit.bench.ceilings import encode_frames, hot_path_rate, producer_rate
from sportrix_devkit.bench.processes import (
    Child,
    SimulatorProcess,
    cpu_seconds,
    http_get,
    memory_mb,
    metric_value,
)
from sportrix_devkit.bench.report import (
    lag_summary,
    markdown,
    plot,
    stage_quantiles,
    timeline,
)
from sportrix_devkit.bench.topic import (
    APPEND_TIME,
    CONFIG_PARTITIONS,
    Appended,
    create_topic,
    follow,
    read_appended,
)
from sportrix_devkit.waiting import free_port, wait_until_async

__all__ = ["Options", "run"]

_KEY = "bench-key"
#: Options not written as such in the result (``simulated`` is, sport by sport).
_NOT_IN_RESULT = ("out", "scenario", "simulated")


@dataclass
class Options:
    """One benchmark run (the ``bench`` sub-command's flags)."""

    scenario: str = "throughput"
    out: Path = Path("bench-results")
    #: Matches per sport in the simulator (a sport not named: the simulator's default).
    simulated: dict[str, int] = field(default_factory=dict)
    matches: int = 0  # followed; 0: every live match
    update_rate: float = 25.0
    warmup: float = 5.0
    duration: float = 20.0
    seed: int = 1
    max_subscriptions: int = 500
    per_connection: int = 500
    partitions: int = 12
    ceilings: bool = True
    bridge: bool = True
    ceiling_seconds: float = 5.0
    drops: int = 3
    drop_mode: str = "abrupt"
    kafka: str | None = None
    replicas: int = 1
    profile: bool = False
    daemon_env: dict[str, str] = field(default_factory=dict)
    outage: float = 60.0  # outage: seconds Kafka is down
    kill_at: float | None = None  # outage: kill -9 the daemon this many seconds into it
    spool: bool = True  # outage: give the daemon INGESTER_SPOOL_DIR


def run(options: Options) -> dict[str, Any]:
    """Run the scenario; write ``bench-<scenario>.json|.md|.png`` to ``options.out``."""
    options.out.mkdir(parents=True, exist_ok=True)
    # SIGTERM as Ctrl-C: the scenario's tasks are cancelled and stop the simulator, the daemon
    # and the bench's Kafka (started in their own sessions, they would outlive the bench).
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    result = uvloop.run(_measure(options))  # the daemon's loop: the producer ceiling runs here
    stem = options.out / f"bench-{options.scenario}"
    Path(f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    Path(f"{stem}.md").write_text(markdown(result))
    plot(result, Path(f"{stem}.png"))
    return result


async def _measure(options: Options) -> dict[str, Any]:
    result: dict[str, Any] = {
        "scenario": {
            "name": options.scenario,
            **{
                k: v
                for k, v in asdict(options).items()
                if k not in ("out", "scenario", "simulated")
            },
            **options.simulated,
        },
        "machine": machine(),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    async with _kafka(options) as bootstrap:
        if options.scenario == "scale":
            await _scale(options, bootstrap, result)
        else:
            await _ceilings(options, bootstrap, result)
            if options.bridge:
                await _bridge(options, bootstrap, result)
            await _throughput(options, bootstrap, result)
    return result


def machine() -> dict[str, Any]:
    """nproc, CPU model, memory and load: what the numbers depend on."""
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory_kb = 0
    with contextlib.suppress(OSError):
        memory_kb = int(Path("/proc/meminfo").read_text().split()[1])
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "memory_gb": round(memory_kb / 1024 / 1024, 1),
        "load_average": os.getloadavg(),
        "python": platform.python_version(),
    }


@contextlib.asynccontextmanager
async def _kafka(options: Options) -> AsyncIterator[str]:
    """``--kafka``, else ``KAFKA_BOOTSTRAP_SERVERS``, else a LocalKafka started for the run."""
    external = options.kafka or os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        yield external
        return
    from sportrix_devkit.localkafka import LocalKafka

    with tempfile.TemporaryDirectory(prefix="bench-kafka-") as data_dir:
        broker = LocalKafka(data_dir, heap="1g", quick_start=False)
        await asyncio.to_thread(broker.start)
        try:
            yield broker.bootstrap_servers
        finally:
            await asyncio.to_thread(broker.stop)


def _simulator(options: Options, log: str) -> SimulatorProcess:
    args = [
        *(f"--matches={sport}={count}" for sport, count in options.simulated.items()),
        "--seed", str(options.seed), "--update-rate", f"{options.update_rate:g}",
        "--max-subscriptions", str(options.max_subscriptions),
    ]  # fmt: skip
    return SimulatorProcess(options.out / log, _KEY, args)


def _followed(options: Options, catalogue: list[dict[str, Any]]) -> list[int]:
    live = [int(m["match_id"]) for m in catalogue if m["status"] == "live"]
    return live[: options.matches] if options.matches else live


def _say(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def _client_spec(options: Options, sim: SimulatorProcess, **extra: Any) -> dict[str, Any]:
    """What a client process of the bench (bare client, bridge) needs to follow the run's
    matches on ``sim``, and ``extra``."""
    return {
        "url": sim.url,
        "api_key": _KEY,
        "match_ids": _followed(options, sim.catalogue),
        "per_connection": min(options.per_connection, options.max_subscriptions),
        **extra,
    }


# -- ceilings ------------------------------------------------------------------------------


async def _ceilings(options: Options, bootstrap: str, result: dict[str, Any]) -> None:
    _say("ceiling (a): a bare websockets client drains the simulator")
    sim = _simulator(options, "simulator-ceiling.log")
    try:
        spec = _client_spec(
            options, sim, warmup=options.warmup, seconds=options.duration, sample=5000
        )
        spec_path, out_path = options.out / "client-spec.json", options.out / "client-out.json"
        spec_path.write_text(json.dumps(spec))
        command = [
            sys.executable,
            "-m",
            "sportrix_devkit.bench.client",
            str(spec_path),
            str(out_path),
        ]
        await asyncio.to_thread(subprocess.run, command, check=True)
    finally:
        sim.stop()
    drained = json.loads(out_path.read_text())
    out_path.unlink()
    spec_path.unlink()
    client = {
        "frames_per_s": drained["frames"] / drained["seconds"],
        **_cpu_figures(drained["cpu_seconds"], drained["frames"], drained["seconds"]),
        "load_average": os.getloadavg()[0],
    }
    result["websocket_client"] = client
    result["ceilings"] = {"websocket client (frames)": client["frames_per_s"]}
    if not options.ceilings:
        return
    _say("ceilings (b) hot path and (c) bare producer")
    frames = [raw.encode() for raw in drained["sample"]]
    topic = f"bench-ceiling-{uuid.uuid4().hex[:8]}"
    await create_topic(bootstrap, topic, options.partitions, APPEND_TIME)
    records = encode_frames(frames, topic)
    hot_path = hot_path_rate(frames, topic)
    sent, _ = await producer_rate(bootstrap, topic, records, options.ceiling_seconds, batched=False)
    batched, batched_cpu = await producer_rate(
        bootstrap, topic, records, options.ceiling_seconds, batched=True
    )
    result["ceilings"] |= {
        "hot path in-process (frames)": hot_path,
        "aiokafka send() (records)": sent,
        "aiokafka send_batch() (records)": batched,
    }
    # The daemon is one asyncio thread: it pays the three stages one after the other, so
    # their CPU costs add up. One core doing nothing else could not beat this bound.
    stages = {
        "websocket client": drained["cpu_seconds"] / max(1, drained["frames"]) * 1e6,
        "hot path": 1e6 / hot_path if hot_path else 0.0,
        "aiokafka send_batch()": batched_cpu,
    }
    total = sum(stages.values())
    result["serial_bound"] = {
        "cpu_us_per_frame": stages,
        "frames_per_s": 1e6 / total if total else 0.0,
    }
    result["record_bytes_mean"] = sum(len(r.value) for r in records) / max(1, len(records))
    result["frame_bytes_mean"] = sum(len(f) for f in frames) / max(1, len(frames))


def _ratio(result: dict[str, Any]) -> None:
    """The ingester's rate over the slowest ceiling (the producer's best method counts), and
    every measured rate over the bare websocket client's."""
    ceilings = result.get("ceilings")
    if not ceilings or "ingester" not in result:
        return
    client = result["websocket_client"]["frames_per_s"]
    for name in ("ingester", "bridge"):
        if name in result and client:
            result[name]["ratio_to_websocket_client"] = result[name]["frames_per_s"] / client
    producers = [v for k, v in ceilings.items() if k.startswith("aiokafka")]
    if not producers:  # --no-ceilings: the bare client alone, compared above
        return
    candidates = {k: v for k, v in ceilings.items() if not k.startswith("aiokafka")}
    candidates["aiokafka producer (best)"] = max(producers)
    name = min(candidates, key=lambda k: candidates[k])
    result["slowest_ceiling"] = name
    result["ratio_to_slowest_ceiling"] = result["ingester"]["frames_per_s"] / candidates[name]
    bound = result.get("serial_bound", {}).get("frames_per_s")
    if bound and result["scenario"]["replicas"] == 1:  # a bound for one process
        result["ratio_to_serial_bound"] = result["ingester"]["frames_per_s"] / bound


def _measured(
    window: _Window, rss: float, peak: float, appended: Sequence[Appended]
) -> dict[str, Any]:
    """The figures of a window: rates, lag, CPU (every replica's together) and memory (the
    replica with the highest peak)."""
    return {
        "frames": window.frames,
        "frames_per_s": window.frames / window.elapsed,
        **lag_summary(appended, window.start_ms, window.end_ms),
        **_cpu_figures(window.cpu, window.frames, window.elapsed),
        "rss_mb": rss,
        "peak_rss_mb": peak,
        "load_average": window.load_average,
    }


@dataclass
class _Window:
    """One measured window: frames the simulator sent, CPU seconds of the measured
    process(es) and of the simulator, its bounds and frames sent per second."""

    frames: int
    cpu: float
    sim_cpu: float
    elapsed: float
    start_ms: int
    end_ms: int
    per_second: list[float]
    load_average: float


async def _window(options: Options, sim: SimulatorProcess, cpu: Callable[[], float]) -> _Window:
    """Measure ``options.duration`` seconds: the simulator's frames sent and ``cpu()``."""
    _say(f"measuring for {options.duration:g} s")
    start_ms = int(time.time() * 1000)
    frames0, cpu0, t0 = sim.frames_sent(), cpu(), time.monotonic()
    sim_cpu0 = cpu_seconds(sim.pid)
    per_second: list[float] = []
    previous = frames0
    for second in range(1, int(options.duration) + 1):
        await asyncio.sleep(max(0.0, t0 + second - time.monotonic()))
        now = sim.frames_sent()
        per_second.append(float(now - previous))
        previous = now
    elapsed = time.monotonic() - t0
    return _Window(
        frames=previous - frames0,
        cpu=cpu() - cpu0,
        sim_cpu=cpu_seconds(sim.pid) - sim_cpu0,
        elapsed=elapsed,
        start_ms=start_ms,
        end_ms=start_ms + int(elapsed * 1000),
        per_second=per_second,
        load_average=os.getloadavg()[0],
    )


def _cpu_figures(cpu: float, frames: int, elapsed: float) -> dict[str, float]:
    """A process's ``cpu`` seconds over a window of ``elapsed`` seconds and ``frames``."""
    return {
        "cpu_s_per_1000_frames": cpu / frames * 1000 if frames else 0.0,
        "cpu_utilisation": cpu / elapsed,
    }


# -- the naive bridge ----------------------------------------------------------------------


async def _bridge(options: Options, bootstrap: str, result: dict[str, Any]) -> None:
    """The naive bridge (``bench/bridge.py``) on a fresh simulator: the baseline a user
    would compare the daemon with."""
    _say("the naive bridge: websockets + json + fastavro + aiokafka send() per frame")
    sim = _simulator(options, "simulator-bridge.log")
    topic = f"bench-bridge-{uuid.uuid4().hex[:8]}"
    spec_path = options.out / "bridge-spec.json"
    bridge: Child | None = None
    try:
        await create_topic(bootstrap, topic, options.partitions, APPEND_TIME)
        spec = _client_spec(options, sim, bootstrap=bootstrap, topic=topic)
        spec_path.write_text(json.dumps(spec))
        log = options.out / "bridge.log"
        bridge = Child([str(spec_path)], log, module="sportrix_devkit.bench.bridge")
        started = bridge

        def subscribed() -> bool:
            started.check_alive()
            return "subscribed" in log.read_text(errors="replace")

        await wait_until_async(subscribed, "the bridge to subscribe", 60)
        await asyncio.sleep(options.warmup)
        window = await _window(options, sim, lambda: cpu_seconds(started.pid))
        rss, peak = memory_mb(bridge.pid)
    finally:
        if bridge is not None:
            bridge.stop()
        sim.stop()
        spec_path.unlink(missing_ok=True)
    appended = await read_appended(bootstrap, topic, options.partitions)
    result["bridge"] = _measured(window, rss, peak, appended)


# -- the ingester --------------------------------------------------------------------------


class _Ingester(Child):
    """``sportrix-ingester run`` against the bench's topics, HTTP on a free port."""

    def __init__(
        self, options: Options, bootstrap: str, url: str, topic: str, n: int, replica: int
    ) -> None:
        self.http_port = free_port()
        self.instance_id = f"bench-{replica}"
        env = {
            "SPORTRIX_URL": url,
            "SPORTRIX_PROXY": "none",  # the simulator is local, whatever proxy the shell has
            "SPORTRIX_API_KEY": _KEY,
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "INGESTER_TOPIC": topic,
            "INGESTER_CONFIG_TOPIC": f"{topic}-config",
            "INGESTER_DLQ_TOPIC": f"{topic}-dlq",
            "INGESTER_TOPIC_PARTITIONS": str(options.partitions),
            "INGESTER_HTTP_HOST": "127.0.0.1",
            "INGESTER_HTTP_PORT": str(self.http_port),
            "INGESTER_INSTANCE_ID": self.instance_id,
            "INGESTER_GROUP_ID": f"{topic}-group",
            "INGESTER_SUBSCRIPTIONS_PER_CONNECTION": str(options.per_connection),
            "INGESTER_MAX_MATCHES": str(max(5000, n)),
            "INGESTER_LOG_LEVEL": "WARNING",
            **options.daemon_env,
        }
        log = "ingester.log" if options.replicas == 1 else f"ingester-{replica}.log"
        super().__init__(["run"], options.out / log, env)

    def metrics(self) -> str:
        """The ``/metrics`` text (raises ``OSError`` while not answering)."""
        self.check_alive()
        return http_get(f"http://127.0.0.1:{self.http_port}/metrics", 5).decode()

    def gauges(self) -> tuple[int, int]:
        """Active matches and owned config partitions (``/metrics``); -1s while not answering."""
        try:
            text = self.metrics()
        except OSError:
            return -1, -1
        active = metric_value(text, "sportrix_ingester_subscriptions", 'state="active"')
        owned = metric_value(text, "sportrix_ingester_owned_config_partitions")
        return (-1 if active is None else int(active)), (-1 if owned is None else int(owned))


class _Fleet:
    """The ``--replicas`` daemons of a run: one consumer group, one data topic.

    The group shares the config topic's partitions, and so the followed matches, among them,
    as among a deployment's replicas.
    """

    def __init__(self, options: Options, bootstrap: str, url: str, topic: str, n: int) -> None:
        self.topic = topic
        self.daemons: list[_Ingester] = []
        try:
            for replica in range(options.replicas):
                self.daemons.append(_Ingester(options, bootstrap, url, topic, n, replica))
        except BaseException:
            self.stop()
            raise

    def shares(self) -> dict[str, dict[str, int]]:
        """Active matches and owned config partitions, by replica (instance id)."""
        shares = {}
        for daemon in self.daemons:
            active, owned = daemon.gauges()
            shares[daemon.instance_id] = {"active": active, "config_partitions": owned}
        return shares

    def active(self) -> int:
        """Active matches over every replica; -1 while one is not answering."""
        counts = [active for active, _ in (daemon.gauges() for daemon in self.daemons)]
        return -1 if min(counts) < 0 else sum(counts)

    def settled(self, n: int) -> bool:
        """Every config partition owned by exactly one replica, each replica owning some,
        and all ``n`` matches active."""
        gauges = [daemon.gauges() for daemon in self.daemons]
        owned = [partitions for _, partitions in gauges]
        return (
            min(owned) > 0
            and sum(owned) == CONFIG_PARTITIONS
            and sum(active for active, _ in gauges) == n
        )

    def cpu_seconds(self) -> float:
        """CPU seconds of every replica together."""
        return sum(cpu_seconds(daemon.pid) for daemon in self.daemons)

    def memory_mb(self) -> tuple[float, float]:
        """RSS and peak RSS in MB of the replica with the highest peak (a per-process budget)."""
        return max((memory_mb(daemon.pid) for daemon in self.daemons), key=lambda m: m[1])

    def stop(self) -> None:
        """Stop every replica: all are told at once, so none takes over another's matches."""
        for daemon in self.daemons:
            daemon.terminate()
        for daemon in self.daemons:
            daemon.stop()


async def _start_fleet(
    options: Options, bootstrap: str, sim: SimulatorProcess, ids: list[int]
) -> tuple[_Fleet, float]:
    """Follow ``ids``, start the daemons; return them and the seconds until all were active."""
    topic = f"bench-{uuid.uuid4().hex[:8]}"
    await create_topic(bootstrap, topic, options.partitions, APPEND_TIME)
    await follow(bootstrap, f"{topic}-config", ids)
    fleet = _Fleet(options, bootstrap, sim.url, topic, len(ids))
    started = time.monotonic()
    try:
        what = f"{len(ids)} matches active on {options.replicas} replica(s)"
        await wait_until_async(lambda: fleet.settled(len(ids)), what, 180, interval=0.05)
    except BaseException:
        fleet.stop()
        raise
    return fleet, time.monotonic() - started


async def _throughput(options: Options, bootstrap: str, result: dict[str, Any]) -> None:
    _say("the ingester: waiting until every match is active")
    sim = _simulator(options, "simulator.log")
    fleet: _Fleet | None = None
    profiler: subprocess.Popen[bytes] | None = None
    try:
        ids = _followed(options, sim.catalogue)
        result["followed"] = len(ids)
        fleet, result["initial_active_s"] = await _start_fleet(options, bootstrap, sim, ids)
        await asyncio.sleep(options.warmup)
        result["replicas"] = fleet.shares()
        if options.profile:
            profiler = _py_spy(options, fleet.daemons[0].pid)
        stages_before = [daemon.metrics() for daemon in fleet.daemons]
        window = await _window(options, sim, fleet.cpu_seconds)
        stages_after = [daemon.metrics() for daemon in fleet.daemons]
        rss, peak = fleet.memory_mb()
    finally:
        if profiler is not None:
            profiler.wait(60)
        if fleet is not None:
            fleet.stop()
        sim.stop()
    _say("reading the topic back")
    appended = await read_appended(bootstrap, fleet.topic, options.partitions)
    result["ingester"] = _measured(window, rss, peak, appended)
    result["ingester"]["stages_ms"] = stage_quantiles(stages_before, stages_after)
    # The simulator shares the machine: a saturated simulator caps the run, not the daemon.
    result["simulator"] = _cpu_figures(window.sim_cpu, window.frames, window.elapsed)
    rows = timeline(appended, window.start_ms, window.end_ms)
    for row, sent in zip(rows, window.per_second, strict=False):
        row["frames_sent"] = sent
    result["timeline"] = rows
    _ratio(result)


def _py_spy(options: Options, pid: int) -> subprocess.Popen[bytes]:
    """py-spy sampling the daemon for the measured window (collapsed stacks, idle excluded)."""
    py_spy = Path(sys.executable).with_name("py-spy")
    command = [
        str(py_spy), "record", "--pid", str(pid), "--duration", str(int(options.duration)),
        "--rate", "200", "--format", "raw", "--output", str(options.out / "profile.txt"),
    ]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


# -- scale ---------------------------------------------------------------------------------


async def _scale(options: Options, bootstrap: str, result: dict[str, Any]) -> None:
    _say("the ingester: waiting until every match is active")
    sim = _simulator(options, "simulator.log")
    fleet: _Fleet | None = None
    try:
        ids = _followed(options, sim.catalogue)
        result["followed"] = n = len(ids)
        fleet, initial = await _start_fleet(options, bootstrap, sim, ids)
        await asyncio.sleep(options.warmup)
        result["replicas"] = fleet.shares()
        start_ms = int(time.time() * 1000)
        frames0, cpu0, t0 = sim.frames_sent(), fleet.cpu_seconds(), time.monotonic()
        load0 = os.getloadavg()[0]
        recoveries = []
        for _ in range(options.drops):
            sim.get_raw(f"/_sim/drop?mode={options.drop_mode}")
            dropped = time.monotonic()
            await wait_until_async(
                lambda: 0 <= fleet.active() < n, "the drop to be noticed", 30, interval=0.01
            )
            await wait_until_async(
                lambda: fleet.active() >= n, f"{n} matches active again", 120, interval=0.02
            )
            recoveries.append(time.monotonic() - dropped)
            await asyncio.sleep(max(1.0, options.duration / max(1, options.drops) - 5))
        elapsed = time.monotonic() - t0
        frames, cpu = sim.frames_sent() - frames0, fleet.cpu_seconds() - cpu0
        rss, peak = fleet.memory_mb()
    finally:
        if fleet is not None:
            fleet.stop()
        sim.stop()
    appended = await read_appended(bootstrap, fleet.topic, options.partitions)
    end_ms = start_ms + int(elapsed * 1000)
    window = _Window(frames, cpu, 0.0, elapsed, start_ms, end_ms, [], load0)
    result["scale"] = {
        "initial_active_s": initial,
        "recovery_s": recoveries,
        "rss_mb": rss,
        "peak_rss_mb": peak,
    }
    result["ingester"] = _measured(window, rss, peak, appended)
    result["timeline"] = timeline(appended, start_ms, end_ms)
