"""The ``sportrix-ingester`` command line: one sub-command per module.

Each module in :data:`COMMAND_MODULES` exposes ``register(subparsers)``, which adds its
sub-parser and sets ``handler`` (``Callable[[argparse.Namespace], int]``) as a default.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from ingester import __version__
from ingester.settings import ConfigError

#: Modules that contribute sub-commands, in the order ``--help`` lists them.
COMMAND_MODULES: tuple[str, ...] = (
    "ingester.app",
    "ingester.control.cli",
    "ingester.tools.tail",
    "ingester.tools.demo",
    "ingester.localkafka.cli",
    "ingester.simulator.cli",
    "ingester.bench",
)


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every registered sub-command."""
    parser = argparse.ArgumentParser(
        prog="sportrix-ingester",
        description="Stream Sportrix live scores into Kafka as sport-specific Avro records.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen sub-command; returns the process exit code."""
    args = build_parser().parse_args(argv)
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
