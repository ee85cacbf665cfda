"""Helpers for simulator tests: a plain ``websockets`` client, HTTP GETs, waiting on conditions."""

from __future__ import annotations

import asyncio
import functools
import json
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection
from websockets.frames import Frame, Opcode

from sportrix_devkit.simulator import Simulator, SimulatorConfig
from sportrix_devkit.waiting import wait_until_async

DEADLINE = 5.0


class PingRecorder(ClientConnection):
    """A client connection that notes when each server ping arrives."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pings: list[float] = []

    def process_event(self, event: Any) -> None:
        if isinstance(event, Frame) and event.opcode is Opcode.PING:
            self.pings.append(time.monotonic())
        super().process_event(event)


@asynccontextmanager
async def running(**overrides: Any) -> AsyncIterator[Simulator]:
    """A simulator on a free loopback port with a small catalogue (override anything)."""
    matches = {"soccer": overrides.pop("soccer", 4), "cricket": overrides.pop("cricket", 2)}
    settings: dict[str, Any] = {"port": 0, "matches": matches, "seed": 7}
    settings.update(overrides)
    async with Simulator(SimulatorConfig(**settings)) as sim:
        yield sim


def connect(sim: Simulator, key: str | None = "demo-key", *, header: bool = True, **kwargs: Any):  # type: ignore[no-untyped-def]
    """A ``websockets.connect`` to the simulator, the key in the header or in ``?key=``."""
    url = sim.url
    headers = {}
    if key is not None and header:
        headers["X-API-Key"] = key
    elif key is not None:
        url += f"?key={key}"
    return websockets.connect(url, additional_headers=headers, **kwargs)


async def subscribe(ws: ClientConnection, match_id: Any, action: str = "subscribe") -> None:
    """Send a subscribe (or unsubscribe) message."""
    await ws.send(json.dumps({"action": action, "match_id": match_id}))


async def next_frame(ws: ClientConnection, within: float = DEADLINE) -> dict[str, Any]:
    """The next frame, decoded; fails the test if none comes ``within`` seconds."""
    async with asyncio.timeout(within):
        frame: dict[str, Any] = json.loads(await ws.recv())
    return frame


async def frames_until(
    ws: ClientConnection, done: Callable[[list[dict[str, Any]]], bool], within: float = DEADLINE
) -> list[dict[str, Any]]:
    """Collect frames until ``done(frames)`` holds; fails after ``within`` seconds."""
    frames: list[dict[str, Any]] = []
    async with asyncio.timeout(within):
        while not done(frames):
            frames.append(json.loads(await ws.recv()))
    return frames


async def http_get(sim: Simulator, path: str) -> tuple[int, Any]:
    """``GET path`` on the simulator's port: (status, decoded JSON body)."""

    def fetch() -> tuple[int, Any]:
        try:
            with urllib.request.urlopen(sim.http_url + path, timeout=DEADLINE) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as error:
            body = error.read()
            try:
                return error.code, json.loads(body)
            except ValueError:
                return error.code, body.decode()

    return await asyncio.to_thread(fetch)


#: ``await wait_for(probe, what)``: the devkit's wait, polling every 20 ms for ``DEADLINE`` s.
wait_for = functools.partial(wait_until_async, within=DEADLINE, interval=0.02)


def live_ids(sim: Simulator, sport: str | None = None) -> list[int]:
    """Ids of the matches live now (optionally of one sport)."""
    return [
        m["match_id"]
        for m in sim.hub.catalogue()
        if m["status"] == "live" and (sport is None or m["sport"] == sport)
    ]
