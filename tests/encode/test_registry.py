"""RegistryEncoder and Decoder against an in-test stand-in of the Confluent Schema Registry."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from ingester.convert import load_converters
from ingester.convert.samples import protocol_example
from ingester.encode import (
    Decoder,
    RegistryEncoder,
    RegistryError,
    SchemaRegistryClient,
    build_encoder,
    load_schemas,
)

REPO_SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"


class FakeRegistry:
    """Just the endpoints the ingester uses: register, look up, fetch by id."""

    def __init__(self) -> None:
        self.schemas: list[str] = []  # id - 1 -> schema text
        self.subjects: dict[str, list[int]] = {}
        self.requests: list[tuple[str, str]] = []
        self.app = web.Application()
        self.app.router.add_post("/subjects/{subject}/versions", self.register)
        self.app.router.add_post("/subjects/{subject}", self.lookup)
        self.app.router.add_get("/schemas/ids/{id}", self.by_id)

    async def _schema(self, request: web.Request) -> str:
        self.requests.append((request.method, request.path))
        assert request.content_type == CONTENT_TYPE
        body = await request.json()
        json.loads(body["schema"])  # must be a schema in JSON text
        return str(body["schema"])

    async def register(self, request: web.Request) -> web.Response:
        schema = await self._schema(request)
        if schema not in self.schemas:
            self.schemas.append(schema)
        schema_id = self.schemas.index(schema) + 1
        self.subjects.setdefault(request.match_info["subject"], []).append(schema_id)
        return web.json_response({"id": schema_id}, content_type=CONTENT_TYPE)

    async def lookup(self, request: web.Request) -> web.Response:
        schema = await self._schema(request)
        subject = request.match_info["subject"]
        if schema not in self.schemas or subject not in self.subjects:
            return web.json_response(
                {"error_code": 40401, "message": "Subject not found"}, status=404
            )
        return web.json_response({"subject": subject, "id": self.schemas.index(schema) + 1})

    async def by_id(self, request: web.Request) -> web.Response:
        self.requests.append((request.method, request.path))
        index = int(request.match_info["id"]) - 1
        if not 0 <= index < len(self.schemas):
            return web.json_response(
                {"error_code": 40403, "message": "Schema not found"}, status=404
            )
        return web.json_response({"schema": self.schemas[index]})


@pytest.fixture
async def registry() -> AsyncIterator[tuple[FakeRegistry, str]]:
    fake = FakeRegistry()
    server = TestServer(fake.app, host="127.0.0.1")
    await server.start_server()
    yield fake, str(server.make_url("/"))
    await server.close()


def record_of(sport: str) -> dict[str, Any]:
    converter = load_converters().get(sport)
    assert converter is not None
    return converter.convert("snapshot", protocol_example(sport), 1_795_881_792_500)


async def test_registers_once_and_writes_the_wire_format(
    registry: tuple[FakeRegistry, str],
) -> None:
    fake, url = registry
    encoder = build_encoder(load_converters().schemas, topic="live-scores", registry_url=url)
    await encoder.prepare()
    await encoder.prepare()  # ids are cached: no second registration
    soccer_name = load_schemas()["soccer"].name
    assert sorted(fake.subjects) == [
        "live-scores-com.sportrix.livescores.CricketMatchState",
        "live-scores-com.sportrix.livescores.SoccerMatchState",
    ]
    assert all(len(ids) == 1 for ids in fake.subjects.values())
    value = encoder.encode(soccer_name, record_of("soccer"))
    soccer_id = fake.subjects[f"live-scores-{soccer_name}"][0]
    assert value[:5] == b"\x00" + soccer_id.to_bytes(4, "big")

    decoder = Decoder(REPO_SCHEMAS, registry_url=url)
    try:
        decoded = await decoder.decode_async(value)
        assert decoded.schema_name == soccer_name
        assert decoded.record == record_of("soccer")
        assert decoder.decode(value) == decoded  # now cached
    finally:
        await decoder.close()
        await encoder.close()


async def test_lookup_mode_does_not_register(registry: tuple[FakeRegistry, str]) -> None:
    fake, url = registry
    schema = load_schemas()["cricket"]
    client = SchemaRegistryClient(url)
    try:
        encoder = RegistryEncoder(schema, client, "live-scores", auto_register=False)
        with pytest.raises(RegistryError, match=r"HTTP 404 .*Subject not found"):
            await encoder.prepare()
        with pytest.raises(RuntimeError, match="prepare"):
            encoder.encode(record_of("cricket"))
        await RegistryEncoder(schema, client, "live-scores").prepare()
        await encoder.prepare()
        assert encoder.encode(record_of("cricket"))[:5] == b"\x00\x00\x00\x00\x01"
        assert ("POST", "/subjects/live-scores-com.sportrix.livescores.CricketMatchState") in (
            fake.requests
        )
    finally:
        await client.close()


async def test_unreachable_registry_is_one_line_without_credentials() -> None:
    client = SchemaRegistryClient("http://user:s3cret@127.0.0.1:9/", timeout_s=2)
    try:
        with pytest.raises(RegistryError) as raised:
            await client.schema_by_id(1)
    finally:
        await client.close()
    assert "s3cret" not in str(raised.value)
    assert "\n" not in str(raised.value)
