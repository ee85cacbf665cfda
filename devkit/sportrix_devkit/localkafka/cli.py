"""``sportrix-ingester kafka fetch|start|stop|status``: a local broker from the shell."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from sportrix_devkit.localkafka.broker import (
    BrokerState,
    LocalKafka,
    can_produce,
    running_broker,
    stop_running_broker,
)
from sportrix_devkit.localkafka.fetch import KAFKA_VERSION, LocalKafkaError, cache_dir, classpath

DEFAULT_DATA_DIR = Path(".local/kafka")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``kafka`` sub-command and its ``fetch``/``start``/``stop``/``status`` actions."""
    parser = subparsers.add_parser(
        "kafka",
        help=f"run a local Apache Kafka {KAFKA_VERSION} broker (KRaft, loopback, no Docker)",
        description="Fetch, start, stop and inspect a local Kafka broker; see docs/local-kafka.md.",
    )
    actions = parser.add_subparsers(title="actions", metavar="ACTION", required=True)

    fetch = actions.add_parser("fetch", help="download the broker's jars with Maven (once)")
    fetch.add_argument("--refresh", action="store_true", help="resolve again, ignoring the cache")
    fetch.set_defaults(handler=_fetch)

    start = actions.add_parser("start", help="start a fresh broker in the background")
    _data_dir_flag(start)
    start.add_argument("--port", type=int, default=19092, help="PLAINTEXT port (0: any free)")
    start.add_argument(
        "--secure", action="store_true", help="add a SASL_SSL (SCRAM-SHA-512) listener"
    )
    start.add_argument("--secure-port", type=int, default=19093, help="SASL_SSL port")
    start.add_argument("--timeout", type=float, default=120.0, help="start-up limit, seconds")
    start.set_defaults(handler=_start)

    stop = actions.add_parser("stop", help="stop the broker started in --data-dir")
    _data_dir_flag(stop)
    stop.set_defaults(handler=_stop)

    status = actions.add_parser(
        "status", help="show the broker's addresses; exit 1 if it is not running"
    )
    _data_dir_flag(status)
    status.set_defaults(handler=_status)


def _data_dir_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA_DIR,
        help=f"the broker's files, wiped on start (default: {DEFAULT_DATA_DIR})",
    )


def _fail(message: str) -> int:
    print(f"sportrix-ingester kafka: {message}", file=sys.stderr)
    return 1


def _fetch(args: argparse.Namespace) -> int:
    started = time.monotonic()
    try:
        jars = classpath(refresh=args.refresh)
    except LocalKafkaError as exc:
        return _fail(str(exc))
    print(
        f"Kafka {KAFKA_VERSION}: {len(jars)} jars ready in {time.monotonic() - started:.1f} s "
        f"(classpath cached in {cache_dir()})"
    )
    return 0


def _describe(state: BrokerState) -> None:
    print(f"KAFKA_BOOTSTRAP_SERVERS={state.bootstrap_servers}")
    if state.secure_bootstrap_servers is not None:
        print(f"secured listener (SASL_SSL, SCRAM-SHA-512): {state.secure_bootstrap_servers}")
        print(f"  CA file: {state.ca_file}")
        print(f"  user: {state.sasl_username} (password in state.json beside the log)")
    print(f"log: {state.log_file}")


def _start(args: argparse.Namespace) -> int:
    # The readiness probe's "topic not found yet" warnings are expected; keep them quiet.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    broker = LocalKafka(
        args.data_dir,
        port=args.port,
        secure=args.secure,
        secure_port=args.secure_port if args.secure else 0,
        start_timeout=args.timeout,
        die_with_parent=False,
    )
    started = time.monotonic()
    try:
        broker.start()
    except LocalKafkaError as exc:
        return _fail(str(exc))
    pid = broker.detach()
    print(f"Kafka {KAFKA_VERSION} started in {time.monotonic() - started:.1f} s (pid {pid})")
    state = running_broker(args.data_dir)
    if state is None:
        return _fail("the broker exited right after start-up; see its log")
    _describe(state)
    return 0


def _stop(args: argparse.Namespace) -> int:
    state = stop_running_broker(args.data_dir)
    if state is None:
        print(f"no broker running in {args.data_dir}")
    else:
        print(f"stopped the broker (pid {state.pid}) in {args.data_dir}")
    return 0


def _status(args: argparse.Namespace) -> int:
    state = running_broker(args.data_dir)
    if state is None:
        print(f"no broker running in {args.data_dir}")
        return 1
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    taking = can_produce({"bootstrap_servers": state.bootstrap_servers})
    print(f"running (pid {state.pid}), {'takes records' if taking else 'NOT taking records'}")
    _describe(state)
    return 0 if taking else 1
