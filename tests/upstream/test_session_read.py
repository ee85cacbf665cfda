"""The session's read loop against a scripted connection: what it does with the actions of
a frame that waited for room in the buffer."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry
from websockets.exceptions import ConnectionClosed

from ingester.codecs import build_codecs, classify_error
from ingester.convert.samples import protocol_example
from ingester.observe.metrics import Metrics
from ingester.pipeline import FrameProcessor
from ingester.produce.buffer import RecordBuffer
from ingester.produce.feed import RecordFeed
from ingester.settings import load_settings
from ingester.upstream.session import ConnectionState, SessionConfig, UpstreamSession
from ingester.upstream.subscriptions import Action, CloseConnection, SubscriptionBook, Unsubscribe
from ingester.upstream.transport import UpstreamTransport
from tests.simulator.helpers import wait_for

MATCH = protocol_example("soccer")["match_id"]


def _frame(op: str, seq: int) -> bytes:
    data: dict[str, Any] = {**protocol_example("soccer"), "seq": seq}
    return orjson.dumps({"op": op, "match_id": MATCH, "data": data})


class _Scripted:
    """A connection that delivers ``messages``, then is closed."""

    oversized = None

    def __init__(self, messages: list[bytes]) -> None:
        self._messages = messages

    async def recv(self, decode: bool) -> bytes:
        if not self._messages:
            raise ConnectionClosed(None, None)
        return self._messages.pop(0)


async def test_a_frames_actions_are_dropped_when_its_connection_started_closing_meanwhile() -> None:
    """A ``seq`` gap asks to re-subscribe on this connection; while the frame's record waits
    for room, the match is dropped and the connection (its last) closed, so its index may
    be a new connection's: the re-subscribe must not be carried out."""
    book = SubscriptionBook(per_connection=10, max_matches=100, refused_retry=60.0)
    book.follow(MATCH)
    book.connected(0)
    metrics = Metrics(CollectorRegistry())
    codecs, _ = build_codecs(load_settings())
    processor = FrameProcessor(book, codecs, classify_error, metrics, "scores", "dlq", "pod-1")
    buffer = RecordBuffer(1)
    executed: list[Action] = []
    settings = load_settings()
    feed = RecordFeed(processor, buffer)
    config = SessionConfig(settings, UpstreamTransport(settings), feed, metrics, lambda: None)
    session = UpstreamSession(0, config, book, executed.extend)
    session.state = ConnectionState.CONNECTED
    websocket = _Scripted([_frame("snapshot", 1), _frame("update", 5)])  # 2 to 4 missing
    reading = asyncio.create_task(session._read(websocket))  # type: ignore[arg-type]
    paused = "sportrix_ingester_upstream_paused"
    await wait_for(lambda: metrics.registry.get_sample_value(paused) == 1, "reading paused")
    assert book.unfollow(MATCH) == [Unsubscribe(0, MATCH), CloseConnection(0)]
    assert session.close_cleanly()
    buffer.acknowledge(len(await buffer.take(1)))
    with pytest.raises(ConnectionClosed):
        await reading
    assert executed == []
