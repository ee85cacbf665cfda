"""The sessions' frame sink: each message through the processor, its record into the
buffer, and an awaitable instead of the actions while the buffer is full."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from prometheus_client import CollectorRegistry

from ingester.codecs import build_codecs, classify_error
from ingester.convert.samples import protocol_example
from ingester.observe.metrics import Metrics
from ingester.pipeline import FrameProcessor
from ingester.produce.buffer import RecordBuffer
from ingester.produce.feed import RecordFeed
from ingester.settings import load_settings
from ingester.upstream.subscriptions import Subscribe, SubscriptionBook

MATCH = protocol_example("soccer")["match_id"]


def _frame(op: str, seq: int) -> bytes:
    data: dict[str, Any] = {**protocol_example("soccer"), "seq": seq}
    return orjson.dumps({"op": op, "match_id": MATCH, "data": data})


def _feed(capacity: int) -> tuple[RecordFeed, RecordBuffer, SubscriptionBook]:
    book = SubscriptionBook(per_connection=10, max_matches=100, refused_retry=60.0)
    book.follow(MATCH)
    book.connected(0)
    codecs, _ = build_codecs(load_settings())
    metrics = Metrics(CollectorRegistry())
    processor = FrameProcessor(book, codecs, classify_error, metrics, "scores", "dlq", "pod-1")
    buffer = RecordBuffer(capacity)
    return RecordFeed(processor, buffer), buffer, book


async def test_records_are_queued_at_once_while_there_is_room() -> None:
    feed, buffer, _ = _feed(capacity=10)
    assert feed.feed(_frame("snapshot", 1), 0.0, 0.0, 0) == []
    assert feed.feed(b"not json", 0.0, 0.0, 0) == []  # its dead letter
    assert feed.feed(b'{"op": "hello"}', 0.0, 0.0, 0) == []  # a counted skip, no record
    assert [r.topic for r in await buffer.take(10)] == ["scores", "dlq"]
    assert not feed.full


async def test_a_record_that_finds_the_buffer_full_is_awaited_then_queued_in_order() -> None:
    feed, buffer, _ = _feed(capacity=1)
    assert feed.feed(_frame("snapshot", 1), 0.0, 0.0, 0) == []
    assert feed.full
    waiting = feed.feed(_frame("update", 3), 0.0, 0.0, 0)  # seq 2 missing: a re-subscribe
    assert not isinstance(waiting, list)
    task = asyncio.ensure_future(waiting)
    await asyncio.sleep(0.01)
    assert not task.done()  # no room yet
    buffer.acknowledge(len(await buffer.take(1)))
    async with asyncio.timeout(5):
        actions = await task
    assert actions == [Subscribe(0, MATCH)]
    assert [r.key for r in await buffer.take(1)] == [str(MATCH).encode()]


async def test_an_oversized_message_becomes_its_dead_letter() -> None:
    feed, buffer, _ = _feed(capacity=10)
    head = b'{"op": "update", "match_id": %d, "data": {"events": [' % MATCH
    assert feed.feed_oversized(head, "over 4 MiB", 0.0, 0) == []
    (record,) = await buffer.take(10)
    assert (record.topic, record.key, record.value) == ("dlq", str(MATCH).encode(), head)
