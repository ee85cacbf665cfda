"""The ``sportrix-ingester`` command line: one sub-command per module.

Each command module exposes ``register(subparsers)``, which adds its sub-parser and sets
``handler`` (``Callable[[argparse.Namespace], int]``) as a default. The daemon's own commands
are :data:`COMMANDS`; other distributions add theirs through the entry-point group
:data:`ENTRY_POINT_GROUP` (the devkit: ``simulate``, ``bench``, ``demo``, ``kafka``). A command
line naming a sub-command first imports only that module: the daemon, the simulator and the
demo each start without importing the others (seconds on a busy 2-core machine).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points

from ingester import __version__
from ingester.settings import ConfigError

#: The daemon's sub-commands and the module that registers each, in the order ``--help``
#: lists them (before any added through :data:`ENTRY_POINT_GROUP`).
COMMANDS: dict[str, str] = {
    "run": "ingester.app",
    "matches": "ingester.control.cli",
    "tail": "ingester.tools.tail",
}

#: The entry-point group through which an installed distribution adds sub-commands: each
#: entry point's name is the sub-command, its value the module that registers it.
ENTRY_POINT_GROUP = "sportrix_ingester.commands"

#: The devkit's sub-commands, named here only to tell how to get them when it is missing.
DEVKIT_COMMANDS = ("simulate", "bench", "demo", "kafka")
DEVKIT_HINT = "pip install 'sportrix-ingester[devkit]'"


def available_commands() -> dict[str, str]:
    """Every sub-command installed: :data:`COMMANDS`, then those of the entry-point group."""
    added = {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}
    return COMMANDS | {name: module for name, module in added.items() if name not in COMMANDS}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """Build the top-level parser: with ``command`` (an installed sub-command) only that
    sub-command's, else every sub-command's."""
    commands = available_commands()
    modules = [commands[command]] if command in commands else dict.fromkeys(commands.values())
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
    command = argv[0] if argv else None
    if command in DEVKIT_COMMANDS and command not in available_commands():
        print(f"sportrix-ingester: {command} comes with the devkit: {DEVKIT_HINT}", file=sys.stderr)
        return 2
    args = build_parser(command).parse_args(argv)
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
