"""The ``sportrix-ingester`` command line: one sub-command per module.

Each module in :data:`COMMANDS` exposes ``register(subparsers)``, which adds its sub-parser
and sets ``handler`` (``Callable[[argparse.Namespace], int]``) as a default. A command line
naming a sub-command first imports only that module: the daemon, the simulator and the demo
each start without importing the others (seconds on a busy 2-core machine).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from ingester import __version__
from ingester.settings import ConfigError

#: Each sub-command and the module that registers it, in the order ``--help`` lists them.
COMMANDS: dict[str, str] = {
    "run": "ingester.app",
    "matches": "ingester.control.cli",
    "tail": "ingester.tools.tail",
    "demo": "sportrix_devkit.demo",
    "kafka": "sportrix_devkit.localkafka.cli",
    "simulate": "sportrix_devkit.simulator.cli",
    "bench": "sportrix_devkit.bench",
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """Build the top-level parser: with ``command`` (a key of :data:`COMMANDS`) only that
    sub-command's, else every sub-command's."""
    modules = [COMMANDS[command]] if command in COMMANDS else dict.fromkeys(COMMANDS.values())
    parser = argparse.ArgumentParser(
        prog="sportrix-ingester",
        description="Stream Sportrix live scores into Kafka as sport-specific Avro records.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    for name in modules:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen sub-command; returns the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(argv[0] if argv else None).parse_args(argv)
    # Operator commands show warnings only; the client library's transient retries (leader
    # elections, topic creation) are noise here. ``run`` configures its own logging.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    try:
        code: int = args.handler(args)
    except ConfigError as exc:  # a start-up error: one line naming the setting
        print(f"sportrix-ingester: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
