"""``sportrix-ingester tail``: consume ``live-scores``, decode with ``schemas/``, print lines.

Records are decoded with :class:`ingester.consume.LiveScoresDecoder`, the package's public
decoding API. One line per record, in the style of the vendor's example::

    41282 update  seq=1234  Arsenal 1-0 Chelsea [63:12 2H] Arsenal attack
    90211 update  seq=77    India 154/3 (27.4) - FOUR! Kohli drives through cover
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import sys
import time
from dataclasses import dataclass, field
from typing import Any, TextIO

import orjson
from aiokafka import AIOKafkaConsumer

from ingester.consume import DecodeFailed, KafkaMessage, LiveScoresDecoder
from ingester.convert.registry import Converters, ConverterSetupError, load_converters
from ingester.encode.errors import SchemaLoadError
from ingester.produce.kafka_client import client_kwargs
from ingester.settings import KAFKA_FIELDS, Settings, add_setting_flags, load_settings

__all__ = ["TailStats", "headline", "register", "tail"]


@functools.cache
def _sports() -> Converters | None:
    """The sport registry (built-in and plugin sports), loaded once; ``None``, after a
    warning, when it does not load (a broken plugin): every line is then the generic one."""
    try:
        return load_converters()
    except (ConverterSetupError, SchemaLoadError) as exc:
        print(f"sportrix-ingester tail: generic lines only: {exc}", file=sys.stderr)
        return None


def headline(record: dict[str, Any], registry: Converters | None = None) -> str:
    """The human line for a decoded record: its sport's ``headline`` (see
    :class:`ingester.convert.registry.Sport`), a generic one for a sport without one."""
    registry = registry or _sports()
    entry = None if registry is None else registry.sport(record.get("sport", ""))
    fmt = None if entry is None else entry.headline
    if fmt is None:
        return f"{record.get('home', '?')} v {record.get('away', '?')} ({record.get('status')})"
    try:
        return fmt(record)
    except (KeyError, TypeError, ValueError):
        return f"{record.get('home', '?')} v {record.get('away', '?')}"


@dataclass
class TailStats:
    """What :func:`tail` printed: how many records, and each one's lag in ms (now minus the
    record's ``updated_at``, as on the printed line)."""

    records: int = 0
    lags_ms: list[float] = field(default_factory=list)


async def tail(
    settings: Settings,
    *,
    from_beginning: bool,
    limit: int | None,
    match_ids: set[int],
    as_json: bool,
    out: TextIO,
    stats: TailStats | None = None,
) -> int:
    """Print records until ``limit`` were printed (or forever); returns the count.

    ``stats``, when given, is updated with every printed record, so a caller that interrupts
    the tail still knows what it showed.
    """
    stats = TailStats() if stats is None else stats
    decoder = LiveScoresDecoder(settings.schemas_dir, registry_url=settings.schema_registry_url)
    consumer = AIOKafkaConsumer(
        settings.topic,
        **client_kwargs(settings),
        enable_auto_commit=False,
        auto_offset_reset="earliest" if from_beginning else "latest",
    )
    await consumer.start()
    printed = 0
    try:
        while limit is None or printed < limit:
            batches = await consumer.getmany(timeout_ms=1000)
            for records in batches.values():
                for message in records:
                    if match_ids and int(message.key or b"0") not in match_ids:
                        continue
                    line, lag_ms = await _line(decoder, message, as_json)
                    print(line, file=out, flush=True)
                    printed += 1
                    stats.records += 1
                    if lag_ms is not None:
                        stats.lags_ms.append(lag_ms)
                    if limit is not None and printed >= limit:
                        return printed
    finally:
        await consumer.stop()
        await decoder.close()
    return printed


async def _line(
    decoder: LiveScoresDecoder, message: KafkaMessage, as_json: bool
) -> tuple[str, float | None]:
    """The printed line for a record, and the record's lag in ms when it has one."""
    try:
        record = (await decoder.decode_record(message)).record
    except DecodeFailed as exc:
        return f"(undecodable: {exc})", None
    lag_ms = time.time() * 1000 - record["updated_at"] if record.get("updated_at") else None
    if as_json:
        return orjson.dumps(record).decode(), lag_ms
    lag = "" if lag_ms is None else f" lag={lag_ms:.0f}ms"
    return (
        f"{record['match_id']:>6} {record['op']:<8} seq={record.get('seq')!s:<6}"
        f"{headline(record)}{lag}"
    ), lag_ms


def _handle(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(
            tail(
                settings,
                from_beginning=args.from_beginning,
                limit=args.max,
                match_ids=set(args.match or ()),
                as_json=args.json,
                out=sys.stdout,
            )
        )
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``tail`` sub-command."""
    parser = subparsers.add_parser(
        "tail", help="print the records of the data topic, decoded with schemas/ alone"
    )
    parser.add_argument("--from-beginning", action="store_true", help="start at the oldest")
    parser.add_argument("--max", type=int, metavar="N", help="stop after N records")
    parser.add_argument("--match", type=int, action="append", metavar="ID", help="only this match")
    parser.add_argument("--json", action="store_true", help="print each record as JSON")
    add_setting_flags(parser, only=(*KAFKA_FIELDS, "topic", "schemas_dir", "schema_registry_url"))
    parser.set_defaults(handler=_handle)
