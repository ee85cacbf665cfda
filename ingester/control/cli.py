"""``sportrix-ingester matches add|remove|list``: the operator's view of the config topic.

Commands are written exactly as the contract says (key = the match id as a decimal
string, value = ``{"action": ..., "match_id": N}``), so any Kafka producer can do the same.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any, Literal

import aiohttp
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from ingester.control.assignment import Assignment
from ingester.control.commands import (
    MAX_MATCH_ID,
    CommandRejected,
    encode_command,
    parse_command,
)
from ingester.control.topics import ensure_topics
from ingester.produce.kafka_client import client_kwargs
from ingester.settings import KAFKA_FIELDS, Settings, add_setting_flags, load_settings

__all__ = ["read_config_topic", "register", "write_commands"]


async def write_commands(
    settings: Settings, action: Literal["add", "remove"], match_ids: list[int]
) -> None:
    """Write one command per match to the config topic and wait for Kafka's acks.

    The config topic is created (compacted) first when it is missing, as the daemon would.
    """
    await ensure_topics(settings, data_topics=False)
    producer = AIOKafkaProducer(**client_kwargs(settings), acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for match_id in match_ids:
            key, value = encode_command(action, match_id)
            await producer.send_and_wait(settings.config_topic, value, key=key)
    finally:
        await producer.stop()


async def read_config_topic(settings: Settings) -> tuple[set[int], dict[str, int]]:
    """Replay the whole config topic: the followed set, and rejected commands by reason.

    The set is built by the daemon's own :class:`Assignment`, so both read it alike.
    """
    assignment = Assignment()
    rejected: dict[str, int] = {}
    partitions = await _partitions(settings)
    if not partitions:
        return set(), rejected
    consumer = AIOKafkaConsumer(**client_kwargs(settings), enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        assignment.assign({tp.partition: ends[tp] for tp in partitions})
        remaining = {tp for tp in partitions if ends[tp] > 0}
        while remaining:
            batches = await consumer.getmany(*remaining, timeout_ms=1000)
            for tp, records in batches.items():
                for record in records:
                    try:
                        command = parse_command(record.key, record.value)
                    except CommandRejected as exc:
                        rejected[exc.reason] = rejected.get(exc.reason, 0) + 1
                        assignment.rejected(tp.partition, record.offset, exc.key_id)
                        continue
                    assignment.apply(tp.partition, record.offset, command)
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
    finally:
        await consumer.stop()
    return assignment.matches(), rejected


async def _partitions(settings: Settings) -> list[TopicPartition]:
    """The config topic's partitions (none when the topic does not exist)."""
    admin = AIOKafkaAdminClient(**client_kwargs(settings))
    await admin.start()
    try:
        (described,) = await admin.describe_topics([settings.config_topic])
    finally:
        await admin.close()
    return [TopicPartition(settings.config_topic, p["partition"]) for p in described["partitions"]]


async def _live_states(urls: list[str]) -> dict[int, dict[str, Any]]:
    """Each match's entry in the ``/status`` of the given daemons, with the instance."""
    states: dict[int, dict[str, Any]] = {}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        for url in urls:
            async with session.get(url.rstrip("/") + "/status") as response:
                status = await response.json()
            for match in status["matches"]:
                states[match["match_id"]] = {**match, "instance": status["instance_id"]}
    return states


def _list(settings: Settings, status_urls: list[str]) -> int:
    matches, rejected = asyncio.run(read_config_topic(settings))
    states = asyncio.run(_live_states(status_urls)) if status_urls else {}
    header = f"{'match_id':>10}  {'state':<9} {'sport':<8} {'status':<13} {'seq':>7}  instance"
    print(header if states else "match_id")
    for match_id in sorted(matches):
        if not states:
            print(match_id)
            continue
        live = states.get(match_id, {})
        print(
            f"{match_id:>10}  {live.get('state', '-'):<9} {live.get('sport') or '-':<8} "
            f"{live.get('status') or '-':<13} {live.get('last_seq') or '-':>7}  "
            f"{live.get('instance', '-')}"
        )
    print(f"{len(matches)} matches followed", file=sys.stderr)
    if rejected:
        summary = ", ".join(f"{reason}={count}" for reason, count in sorted(rejected.items()))
        print(f"rejected commands in the topic: {summary}", file=sys.stderr)
    return 0


def _handle(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    if args.verb == "list":
        return _list(settings, args.status_url or [])
    asyncio.run(write_commands(settings, args.verb, args.match_ids))
    print(f"{args.verb}: {' '.join(map(str, args.match_ids))}", file=sys.stderr)
    return 0


def _positive(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive match id")
    if value > MAX_MATCH_ID:
        raise argparse.ArgumentTypeError(f"{text} is above {MAX_MATCH_ID}, the largest match id")
    return value


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``matches`` sub-command."""
    parser = subparsers.add_parser(
        "matches", help="add, remove or list followed matches (the config topic)"
    )
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    for verb, text in (("add", "follow these matches"), ("remove", "stop following them")):
        sub = verbs.add_parser(verb, help=text)
        sub.add_argument("match_ids", nargs="+", type=_positive, metavar="MATCH_ID")
        add_setting_flags(sub, only=(*KAFKA_FIELDS, "config_topic"))
    sub = verbs.add_parser("list", help="the matches the config topic defines")
    sub.add_argument(
        "--status-url",
        action="append",
        metavar="URL",
        help="a daemon's HTTP address (e.g. http://localhost:9108) to show live states; repeatable",
    )
    add_setting_flags(sub, only=(*KAFKA_FIELDS, "config_topic"))
    parser.set_defaults(handler=_handle)
