"""The naive bridge: what a user would write in an afternoon, the daemon's baseline.

``python -m sportrix_devkit.bench.bridge SPEC.json`` subscribes the spec's ``match_ids``
over connections of at most ``per_connection`` matches and, per frame, ``json.loads`` it,
builds the sport's Avro record with fastavro (single-object encoding, as the daemon
writes) and ``await``s aiokafka's ``send()`` (``acks=all``, idempotent, ``linger_ms=5``)
into ``topic``. No buffer, no batching, no reconnects: it runs until SIGTERM. Plain
asyncio, as such a script would be.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import signal
import sys
import time
from datetime import datetime
from typing import Any

import fastavro
from aiokafka import AIOKafkaProducer
from websockets.asyncio.client import ClientConnection, connect

from ingester.encode.schemas import load_schemas

__all__ = ["bridge"]


def _millis(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * 1000)


async def _forward(
    websocket: ClientConnection, producer: AIOKafkaProducer, topic: str, schemas: dict[str, Any]
) -> None:
    async for message in websocket:
        received_at = int(time.time() * 1000)
        frame = json.loads(message)
        if frame.get("op") not in ("snapshot", "update"):
            continue
        data = frame["data"]
        schema = schemas.get(data.get("sport"))
        if schema is None:
            continue
        record = {**data, "match_id": frame["match_id"], "op": frame["op"]}
        record["received_at"] = received_at
        record["start_time"] = _millis(data["start_time"])
        record["updated_at"] = _millis(data["updated_at"]) if data.get("updated_at") else None
        out = io.BytesIO()
        out.write(b"\xc3\x01" + schema.fingerprint)
        fastavro.schemaless_writer(out, schema.parsed, record)
        key = str(frame["match_id"]).encode()
        await producer.send(topic, out.getvalue(), key=key)


async def bridge(spec: dict[str, Any]) -> None:
    """Run the bridge described by ``spec`` until cancelled; see the module docstring."""
    main = asyncio.current_task()
    assert main is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main.cancel)
    schemas = load_schemas()
    producer = AIOKafkaProducer(
        bootstrap_servers=spec["bootstrap"], acks="all", enable_idempotence=True, linger_ms=5
    )
    await producer.start()
    ids: list[int] = spec["match_ids"]
    size: int = spec["per_connection"]
    headers = {"X-API-Key": spec["api_key"]}
    connections = []
    try:
        for start in range(0, len(ids), size):
            websocket = await connect(spec["url"], additional_headers=headers, max_size=None)
            connections.append(websocket)
            for match_id in ids[start : start + size]:
                await websocket.send(json.dumps({"action": "subscribe", "match_id": match_id}))
        print(f"bridge: {len(ids)} matches subscribed", flush=True)
        await asyncio.gather(
            *(_forward(ws, producer, spec["topic"], schemas) for ws in connections)
        )
    finally:
        for websocket in connections:
            await websocket.close()
        await producer.stop()


def main(argv: list[str]) -> int:
    """Read the spec and bridge until SIGTERM."""
    (spec_path,) = argv
    with open(spec_path) as file:
        spec = json.load(file)
    with contextlib.suppress(asyncio.CancelledError):
        asyncio.run(bridge(spec))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
