"""``sportrix-ingester simulate``: run the Sportrix-compatible simulator."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from ingester.convert.registry import ConverterSetupError
from sportrix_devkit.simulator.config import MALFORMED_KINDS, ApiKey, SimulatorConfig
from sportrix_devkit.simulator.engines import engine_kinds
from sportrix_devkit.simulator.server import Simulator

__all__ = ["add_match_flags", "config_from_args", "match_counts", "register"]


def add_match_flags(
    parser: argparse.ArgumentParser,
    *,
    default: str = "default_matches",
    help_text: str = "{sport} matches (ids from {first_id}; default {default})",
    generic: str | None = "--matches",
) -> None:
    """``--SPORT N`` for every sport the simulator plays (``--soccer``, ``--cricket``...) and,
    unless ``generic`` is ``None``, the repeatable ``generic SPORT=N``; read them back with
    :func:`match_counts`. ``default`` names the :class:`EngineKind` count a sport has when not
    told; ``help_text`` is formatted with ``sport``, ``first_id`` and ``default``."""
    defaults = {}
    try:
        kinds = engine_kinds()
    except ConverterSetupError:  # a broken plugin: the command run reports it (exit 2)
        kinds = {}
    for kind in kinds.values():
        defaults[kind.sport] = count = getattr(kind, default)
        flag = f"--{kind.sport}"
        if flag in parser._option_string_actions:  # a sport named like another flag
            continue
        parser.add_argument(
            flag,
            type=int,
            default=None,
            dest=f"matches_{kind.sport}",
            metavar=kind.sport.upper(),
            help=help_text.format(sport=kind.sport, first_id=kind.first_id, default=count),
        )
    if generic is not None:
        parser.add_argument(
            generic,
            action="append",
            default=[],
            type=_sport_count,
            dest="sport_matches",
            metavar="SPORT=N",
            help="N matches of SPORT (any sport, plugins too); repeatable",
        )
    parser.set_defaults(match_defaults=defaults)


def match_counts(args: argparse.Namespace) -> dict[str, int]:
    """The match counts of :func:`add_match_flags`' flags, defaults included."""
    counts = dict(args.match_defaults)
    counts.update(getattr(args, "sport_matches", ()))
    for key, value in vars(args).items():
        if key.startswith("matches_") and value is not None:
            counts[key.removeprefix("matches_")] = value
    return counts


def _sport_count(text: str) -> tuple[str, int]:
    sport, _, count = text.partition("=")
    try:
        return sport.strip(), int(count)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected SPORT=N, got {text!r}") from None


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``simulate`` sub-command."""
    parser = subparsers.add_parser(
        "simulate",
        help="serve simulated Sportrix live scores on ws://HOST:PORT/v1/stream (or wss://)",
        description="A Sportrix-compatible live-scores server with simulated matches of "
        "every registered sport and optional fault injection. See docs/simulator.md.",
    )
    add = parser.add_argument
    add("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    add("--port", type=int, default=8765, help="port (default 8765; 0 picks a free one)")
    add("--api-key", action="append", default=[], metavar="KEY[:SPORT,...]",
        help="accept KEY, for the listed sports (default all); repeatable. "
        "Without any key, only 'demo-key' is accepted")  # fmt: skip
    add("--expired-key", action="append", default=[], metavar="KEY",
        help="a known but expired key (handshake answered 401); repeatable")  # fmt: skip
    add("--unscoped-key", action="append", default=[], metavar="KEY",
        help="a key without the live_scores_statistics scope (401); repeatable")  # fmt: skip
    add_match_flags(parser)
    add("--seed", type=int, default=0, help="random seed: same seed, same matches")
    add("--speed", type=float, default=1.0, help="play at X times real time (default 1)")
    add("--update-rate", type=float, default=None, metavar="R",
        help="frames per second per match, each a real state change (load tests)")  # fmt: skip
    add("--ping-interval", type=float, default=30.0, help="seconds between pings (default 30)")
    add("--max-subscriptions", type=int, default=500, help="per connection (default 500)")
    add("--history", type=int, default=1000, help="states kept per match for /_sim (1000)")
    add("--drop-every", type=float, default=None, metavar="S",
        help="drop every connection every S seconds")  # fmt: skip
    add("--drop-mode", choices=("close", "abrupt"), default="close",
        help="close: close frame 1001/1011/1013; abrupt: TCP dropped without one")  # fmt: skip
    add("--refuse-for", type=float, default=0.0, metavar="S",
        help="answer handshakes with 503 for the first S seconds")  # fmt: skip
    add("--malformed-fraction", type=float, default=0.0, metavar="F",
        help="after each update, send a malformed frame with probability F")  # fmt: skip
    add("--malformed-kinds", default=",".join(MALFORMED_KINDS), metavar="KIND,...",
        help=f"kinds to inject (default all: {','.join(MALFORMED_KINDS)})")  # fmt: skip
    add("--stall-after", type=float, default=None, metavar="S",
        help="after S seconds, stop reading and writing...")  # fmt: skip
    add("--stall-for", type=float, default=10.0, metavar="S", help="...for S seconds (10)")
    add("--tls-cert", type=Path, default=None, metavar="PEM",
        help="serve wss:// (and https://) with this certificate chain")  # fmt: skip
    add("--tls-key", type=Path, default=None, metavar="PEM",
        help="the certificate's private key (default: in --tls-cert)")  # fmt: skip
    add("--tls-client-ca", type=Path, default=None, metavar="PEM",
        help="require client certificates signed by this CA (mutual TLS)")  # fmt: skip
    add("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    parser.set_defaults(handler=_simulate)


def config_from_args(args: argparse.Namespace) -> SimulatorConfig:
    """The :class:`SimulatorConfig` for parsed ``simulate`` arguments (``ValueError`` if bad)."""
    keys = [ApiKey.parse(spec) for spec in args.api_key]
    keys += [ApiKey.parse(spec, expired=True) for spec in args.expired_key]
    keys += [ApiKey.parse(spec, scoped=False) for spec in args.unscoped_key]
    return SimulatorConfig(
        host=args.host,
        port=args.port,
        keys=keys,
        matches=match_counts(args),
        seed=args.seed,
        speed=args.speed,
        update_rate=args.update_rate,
        ping_interval=args.ping_interval,
        max_subscriptions=args.max_subscriptions,
        history=args.history,
        drop_every=args.drop_every,
        drop_mode=args.drop_mode,
        refuse_for=args.refuse_for,
        malformed_fraction=args.malformed_fraction,
        malformed_kinds=tuple(k for k in args.malformed_kinds.split(",") if k),
        stall_after=args.stall_after,
        stall_for=args.stall_for,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        tls_client_ca=args.tls_client_ca,
    )


def _simulate(args: argparse.Namespace) -> int:
    logging.basicConfig(format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("sportrix_devkit.simulator").setLevel(args.log_level)
    try:
        config = config_from_args(args)
    except ValueError as exc:
        print(f"sportrix-ingester simulate: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(_serve(config))
    except OSError as exc:  # the port is taken, a TLS file is missing or not PEM
        print(f"sportrix-ingester simulate: {exc}", file=sys.stderr)
        return 2
    return 0


async def _serve(config: SimulatorConfig) -> None:
    async with Simulator(config) as simulator:
        await simulator.serve_forever()
