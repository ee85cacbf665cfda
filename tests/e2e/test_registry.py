"""The daemon with ``SCHEMA_REGISTRY_URL``: registry wire format, subjects per record name."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from ingester.encode import Decoder
from tests.e2e.harness import Daemon, Simulator, TopicReader, Topics, add_matches
from tests.encode.test_registry import FakeRegistry


@pytest.fixture
async def registry() -> AsyncIterator[tuple[FakeRegistry, str]]:
    fake = FakeRegistry()
    server = TestServer(fake.app, host="127.0.0.1")
    await server.start_server()
    yield fake, str(server.make_url("/")).rstrip("/")
    await server.close()


async def test_records_use_the_registry_wire_format(
    tmp_path: Path, bootstrap: str, topics: Topics, registry: tuple[FakeRegistry, str]
) -> None:
    fake, url = registry
    simulator = Simulator(tmp_path, "--update-rate", "5")
    daemon = Daemon(tmp_path, bootstrap, simulator.url, topics, SCHEMA_REGISTRY_URL=url)
    reader = TopicReader(bootstrap, topics.data, decode=False)
    try:
        matches = simulator.matches("soccer")[:1] + simulator.matches("cricket")[:1]
        await daemon.wait_ready()
        assert set(fake.subjects) == {
            f"{topics.data}-com.sportrix.livescores.SoccerMatchState",
            f"{topics.data}-com.sportrix.livescores.CricketMatchState",
        }
        await add_matches(bootstrap, topics.config, matches)
        await reader.poll_until(lambda rs: len({r.key for r in rs}) == 2, "both matches")
        decoder = Decoder(registry_url=url)
        try:
            for record in reader.records:
                assert record.value is not None
                assert record.value[:1] == b"\x00"
                schema_id = int.from_bytes(record.value[1:5], "big")
                sport = record.headers["sport"].decode()
                assert (
                    schema_id in fake.subjects[f"{topics.data}-{record.headers['schema'].decode()}"]
                )
                decoded = (await decoder.decode_async(record.value)).record
                assert decoded["sport"] == sport
                assert str(decoded["match_id"]).encode() == record.key
        finally:
            await decoder.close()
    finally:
        await reader.close()
        assert daemon.stop() == 0
        simulator.stop()
