"""Health end to end: /readyz follows Kafka's availability; logs are one JSON event a line."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from sportrix_devkit.localkafka import LocalKafka
from tests.e2e.harness import Daemon, Simulator, Topics, add_matches, wait_for


@pytest.fixture
def own_broker(tmp_path: Path, kafka: object) -> Iterator[LocalKafka]:
    """A broker of this test alone, so stopping it disturbs no other test."""
    broker = LocalKafka(tmp_path / "kafka")
    broker.start()
    yield broker
    broker.stop()


async def test_readyz_follows_kafka_and_logs_are_json(
    tmp_path: Path, own_broker: LocalKafka
) -> None:
    simulator = Simulator(tmp_path, "--update-rate", "2")
    topics = Topics("scores", "scores-config", "scores-dlq")
    bootstrap = own_broker.bootstrap_servers
    daemon = Daemon(tmp_path, bootstrap, simulator.url, topics)
    try:
        await daemon.wait_ready()
        await add_matches(bootstrap, topics.config, simulator.matches("soccer")[:2])
        await wait_for(
            lambda: daemon.metric("sportrix_ingester_records_produced_total", sport="soccer") > 0,
            "records produced",
        )
        await asyncio.to_thread(own_broker.stop)

        def not_ready_for_kafka() -> bool:
            code, body = daemon.get("/readyz")
            return code == 503 and b"Kafka" in body

        await wait_for(not_ready_for_kafka, "/readyz 503 naming Kafka", 45)
        assert daemon.alive()
        await asyncio.to_thread(own_broker.start_again)
        await daemon.wait_ready(90)
        produced = daemon.metric("sportrix_ingester_records_produced_total", sport="soccer")
        await wait_for(
            lambda: (
                daemon.metric("sportrix_ingester_records_produced_total", sport="soccer") > produced
            ),
            "records produced again after the outage",
            60,
        )
    finally:
        assert daemon.stop() == 0
        simulator.stop()
    messages = []
    for line in daemon.output().splitlines():
        event = json.loads(line)
        assert {"ts", "level", "logger", "message"} <= event.keys()
        messages.append(event["message"])
    # Start-up's long-lived objects are frozen out of the garbage collector's full passes.
    frozen = [m for m in messages if m.startswith("data path starting; ")]
    assert frozen, messages[:20]
    assert int(frozen[0].split()[3]) > 10_000, frozen[0]
