"""Ceiling (a): a bare ``websockets`` client draining the simulator, in its own process.

``python -m sportrix_devkit.bench.client SPEC.json OUT.json`` subscribes the ids of the spec over
connections of at most ``per_connection`` matches, drains them for ``warmup`` seconds, then
counts frames for ``seconds`` and keeps up to ``sample`` data frames (the hot-path and
producer ceilings run on them). It writes ``{"frames", "seconds", "cpu_seconds", "sample"}``
to OUT.json (``cpu_seconds``: this process's CPU time while counting).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

import uvloop
from websockets.asyncio.client import ClientConnection, connect

__all__ = ["drain"]


async def drain(spec: dict[str, Any]) -> dict[str, Any]:
    """Run the client described by ``spec``; see the module docstring."""
    ids: list[int] = spec["match_ids"]
    size: int = spec["per_connection"]
    headers = {"X-API-Key": spec["api_key"]}
    connections = [
        await connect(spec["url"], additional_headers=headers, max_size=None, compression=None)
        for _ in range(0, len(ids), size)
    ]
    for index, websocket in enumerate(connections):
        for match_id in ids[index * size : (index + 1) * size]:
            await websocket.send(json.dumps({"action": "subscribe", "match_id": match_id}))
    counts = [0] * len(connections)
    sample: list[str] = []
    counting = asyncio.Event()
    keep: int = spec["sample"]

    async def read(index: int, websocket: ClientConnection) -> None:
        while True:
            raw = await websocket.recv(decode=False)
            if counting.is_set():
                counts[index] += 1
                if len(sample) < keep and (b'"op":"update"' in raw or b'"op":"snapshot"' in raw):
                    sample.append(raw.decode())

    readers = [asyncio.create_task(read(i, ws)) for i, ws in enumerate(connections)]
    await asyncio.sleep(spec["warmup"])
    counting.set()
    started, cpu_started = time.perf_counter(), time.process_time()
    await asyncio.sleep(spec["seconds"])
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    frames = sum(counts)
    for task in readers:
        task.cancel()
    await asyncio.gather(*readers, return_exceptions=True)
    for websocket in connections:
        await websocket.close()
    return {"frames": frames, "seconds": elapsed, "cpu_seconds": cpu, "sample": sample}


def main(argv: list[str]) -> int:
    """Read the spec, drain, write the result."""
    spec_path, out_path = argv
    with open(spec_path) as file:
        spec = json.load(file)
    result = uvloop.run(drain(spec))  # the daemon's event loop, for a like-for-like ceiling
    with open(out_path, "w") as file:
        json.dump(result, file)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
