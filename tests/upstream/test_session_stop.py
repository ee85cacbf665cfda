"""Stopping a session (the pool's ``stop()`` on SIGTERM) at the moment its upstream has just
closed the connection: the session ends, it never reconnects."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from ingester.codecs import build_codecs, classify_error
from ingester.observe.metrics import Metrics
from ingester.pipeline import FrameProcessor
from ingester.produce.buffer import RecordBuffer
from ingester.produce.feed import RecordFeed
from ingester.settings import load_settings
from ingester.upstream import session as session_module
from ingester.upstream.session import SessionConfig, UpstreamSession
from ingester.upstream.subscriptions import OpenConnection, SubscriptionBook
from ingester.upstream.transport import UpstreamTransport
from sportrix_devkit.simulator.config import DEMO_KEY
from tests.simulator.helpers import http_get, live_ids, running, wait_for


async def test_a_session_stopped_as_it_finishes_closing_a_dropped_connection_ends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The upstream closes the connection (it is shutting down) and the daemon gets SIGTERM
    at the same moment: the session is cancelled just as its close of the dropped connection
    completes. The cancellation must end it; swallowed, the session went on reconnecting,
    the pool's ``stop()`` never returned and the daemon never exited."""
    async with running() as sim:
        settings = load_settings(url=sim.url, proxy="none", backoff_base=0.05, backoff_cap=0.1)
        book = SubscriptionBook(per_connection=10, max_matches=100, refused_retry=60.0)
        match_id = live_ids(sim, "soccer")[0]
        assert book.follow(match_id) == [OpenConnection(0)]
        metrics = Metrics(CollectorRegistry())
        codecs, _ = build_codecs(settings)
        processor = FrameProcessor(book, codecs, classify_error, metrics, "scores", "dlq", "pod")
        feed = RecordFeed(processor, RecordBuffer(1000))
        config = SessionConfig(
            settings, UpstreamTransport(settings), feed, metrics, lambda: DEMO_KEY
        )
        session = UpstreamSession(0, config, book, lambda actions: None)
        task = asyncio.create_task(session.run())
        await wait_for(lambda: sim.stats()["connections_open"] == 1, "one open connection")

        closing = session_module._TrackedConnection.close

        async def close_then_stop(websocket: Any, *args: Any, **kwargs: Any) -> None:
            await closing(websocket, *args, **kwargs)
            task.cancel()  # SIGTERM: the pool stops every session now

        monkeypatch.setattr(session_module._TrackedConnection, "close", close_then_stop)
        status, dropped = await http_get(sim, "/_sim/drop?mode=close")
        assert (status, dropped["dropped"]) == (200, 1)

        done, _ = await asyncio.wait({task}, timeout=5)
        reconnects = sim.stats()["handshakes_accepted"] - 1
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert task in done, f"the session is still running ({reconnects} reconnect(s))"
        assert task.cancelled()
        assert reconnects == 0
