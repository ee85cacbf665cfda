"""``python -m sportrix_devkit.localkafka ACTION``: the ``kafka`` sub-command on its own.

The Makefile fetches the jars this way, so it works even while other sub-commands are broken.
"""

import argparse
import sys

from sportrix_devkit.localkafka.cli import register

parser = argparse.ArgumentParser(prog="python -m sportrix_devkit.localkafka")
register(parser.add_subparsers(metavar="COMMAND", required=True))
args = parser.parse_args(["kafka", *sys.argv[1:]])
sys.exit(args.handler(args))
