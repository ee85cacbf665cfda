"""``sportrix-ingester bench``: the ingester measured from the outside against its ceilings.

Starts Kafka (or uses ``--kafka``/``KAFKA_BOOTSTRAP_SERVERS``), the simulator and the daemon
as separate processes, drives a scenario and writes ``bench-<scenario>.json``, ``.md`` and
``.png`` to ``--out``. ``outage`` (:mod:`.outage`) stops and restarts a broker of its own.
See ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``bench`` sub-command."""
    from sportrix_devkit.simulator.cli import add_match_flags

    parser = subparsers.add_parser(
        "bench",
        help="benchmark the ingester against its ceilings (Kafka, simulator, daemon)",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    add = parser.add_argument
    add("scenario", nargs="?", choices=("throughput", "scale", "outage"), default="throughput")
    add("--out", type=Path, default=Path("bench-results"), help="output directory")
    add_match_flags(
        parser,
        default="bench_matches",
        help_text="{sport} matches in the simulator ({default})",
        generic=None,
    )
    add("--matches", type=int, default=0, help="matches followed (default: every live one)")
    add("--update-rate", type=float, default=25.0, help="frames/s per match (25)")
    add("--warmup", type=float, default=5.0, help="seconds before measuring (5)")
    add("--duration", type=float, default=20.0, help="seconds measured (20)")
    add("--seed", type=int, default=1, help="simulator seed (1)")
    add("--max-subscriptions", type=int, default=500, help="simulator cap per connection")
    add("--per-connection", type=int, default=500, help="daemon matches per connection")
    add("--partitions", type=int, default=12, help="data topic partitions (12)")
    add(
        "--no-ceilings",
        dest="ceilings",
        action="store_false",
        help="skip the hot-path and producer ceilings (the bare client always runs)",
    )
    add("--no-bridge", dest="bridge", action="store_false", help="skip the naive bridge")
    add("--ceiling-seconds", type=float, default=5.0, help="seconds per producer ceiling")
    add("--drops", type=int, default=3, help="scale: mass disconnects (3)")
    add("--drop-mode", choices=("close", "abrupt"), default="abrupt")
    add("--kafka", help="bootstrap servers (default: KAFKA_BOOTSTRAP_SERVERS, else LocalKafka)")
    add(
        "--replicas",
        type=_replicas,
        default=1,
        help="daemons sharing the matches as one consumer group (1)",
    )
    add("--profile", action="store_true", help="py-spy the (first) daemon (profile.txt)")
    add(
        "--daemon-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra setting for the daemon (repeatable)",
    )
    add("--outage", type=float, default=60.0, help="outage: seconds Kafka is down (60)")
    add("--kill-at", type=float, help="outage: kill -9 the daemon S seconds into the outage")
    add(
        "--no-spool",
        dest="spool",
        action="store_false",
        help="outage: the daemon without INGESTER_SPOOL_DIR (the row without a spool)",
    )
    parser.set_defaults(handler=_bench)


def _replicas(text: str) -> int:
    from sportrix_devkit.bench.topic import CONFIG_PARTITIONS

    value = int(text)
    if not 1 <= value <= CONFIG_PARTITIONS:
        raise argparse.ArgumentTypeError(
            f"{text}: from 1 to {CONFIG_PARTITIONS}, the config topic's partitions"
        )
    return value


def _bench(args: argparse.Namespace) -> int:
    from sportrix_devkit.bench import outage
    from sportrix_devkit.bench.report import markdown
    from sportrix_devkit.bench.scenarios import Options, run
    from sportrix_devkit.simulator.cli import match_counts

    values = {k: v for k, v in vars(args).items() if k in Options.__dataclass_fields__}
    values["simulated"] = match_counts(args)
    values["daemon_env"] = dict(item.split("=", 1) for item in args.daemon_env)
    if args.scenario == "outage":
        print(outage.markdown(outage.run(Options(**values))), end="")
        print(f"results in {args.out}/bench-outage.json|.md")
        return 0
    result = run(Options(**values))
    print(markdown(result), end="")
    print(f"results in {args.out}/bench-{args.scenario}.json|.md|.png")
    return 0
