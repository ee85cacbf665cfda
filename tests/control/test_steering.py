"""Steering: config changes into the book and out as upstream actions; retire commands."""

from __future__ import annotations

import asyncio

import orjson
from prometheus_client import CollectorRegistry

from ingester.control.assignment import Follow, Unfollow
from ingester.control.steering import Steering
from ingester.observe.metrics import Metrics
from ingester.produce.buffer import RecordBuffer
from ingester.settings import load_settings
from ingester.upstream.subscriptions import (
    Action,
    CloseConnection,
    OpenConnection,
    SubscriptionBook,
)


def _steering(max_matches: int = 2) -> tuple[Steering, list[Action], RecordBuffer, Metrics]:
    settings = load_settings(max_matches=max_matches, instance_id="pod-1")
    book = SubscriptionBook(per_connection=10, max_matches=max_matches, refused_retry=60.0)
    executed: list[Action] = []
    buffer = RecordBuffer(10)
    metrics = Metrics(CollectorRegistry())
    return Steering(settings, book, executed.extend, buffer, metrics), executed, buffer, metrics


def test_changes_are_carried_out_until_it_stops() -> None:
    steering, executed, _, metrics = _steering(max_matches=1)
    steering.apply([Follow(7), Follow(8)])  # 8 is held back: one match at most
    assert executed == [OpenConnection(0)]
    refusals = "sportrix_ingester_capacity_refusals_total"
    assert metrics.registry.get_sample_value(refusals) == 1
    steering.apply([Unfollow(7)])  # 7's room goes to 8, on a new connection
    assert executed == [OpenConnection(0), CloseConnection(0), OpenConnection(0)]
    steering.stop()
    before = list(executed)
    steering.apply([Follow(9)])
    assert executed == before


async def test_a_retired_match_gets_its_remove_command_written_to_the_config_topic() -> None:
    steering, _, buffer, metrics = _steering()
    steering.retire(41282)
    async with asyncio.timeout(5):
        (record,) = await buffer.take(1)
    assert record.topic == "live-scores-config"
    assert (record.key, orjson.loads(record.value)) == (
        b"41282",
        {"action": "remove", "match_id": 41282},
    )
    assert record.headers == [("producer", b"pod-1")]
    assert metrics.registry.get_sample_value("sportrix_ingester_retired_matches_total") == 1
