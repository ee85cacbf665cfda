"""``sportrix-ingester run``: the daemon."""

from __future__ import annotations

import argparse
import sys

from ingester.settings import ConfigError, add_setting_flags, load_settings


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``run`` sub-command."""
    parser = subparsers.add_parser("run", help="run the ingester daemon")
    add_setting_flags(parser)
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    try:
        load_settings(args)
    except ConfigError as exc:
        print(f"sportrix-ingester: {exc}", file=sys.stderr)
        return 2
    return 0
