"""The stream's contract, driven with a plain ``websockets`` client as the vendor's example."""

from __future__ import annotations

import asyncio
import itertools
import json

import pytest
from websockets.exceptions import InvalidStatus

from sportrix_devkit.simulator import ApiKey
from tests.simulator.helpers import (
    PingRecorder,
    connect,
    frames_until,
    http_get,
    live_ids,
    next_frame,
    running,
    subscribe,
    wait_for,
)

KEYS = [
    ApiKey("all-sports"),
    ApiKey.parse("soccer-only:soccer"),
    ApiKey("old", expired=True),
    ApiKey("no-scope", scoped=False),
]


@pytest.mark.parametrize("header", [True, False], ids=["header", "query"])
@pytest.mark.parametrize(
    ("key", "reason"),
    [
        (None, "missing_key"),
        ("wrong", "unknown_key"),
        ("old", "expired_key"),
        ("no-scope", "unscoped_key"),
    ],
)
async def test_handshake_is_refused_with_401(key: str | None, reason: str, header: bool) -> None:
    async with running(keys=KEYS) as sim:
        with pytest.raises(InvalidStatus) as refused:
            async with connect(sim, key, header=header):
                pass
        assert refused.value.response.status_code == 401
        assert sim.stats()["handshakes_refused"] == {reason: 1}


@pytest.mark.parametrize("header", [True, False], ids=["header", "query"])
async def test_valid_key_connects(header: bool) -> None:
    async with running(keys=KEYS) as sim, connect(sim, "all-sports", header=header) as ws:
        await subscribe(ws, live_ids(sim)[0])
        assert (await next_frame(ws))["op"] == "snapshot"


async def test_demo_key_is_the_only_key_when_none_is_configured() -> None:
    async with running() as sim:
        async with connect(sim, "demo-key") as ws:
            await subscribe(ws, 90000)
            assert (await next_frame(ws))["data"]["sport"] == "cricket"
        with pytest.raises(InvalidStatus):
            async with connect(sim, "all-sports"):
                pass


async def test_server_pings_every_interval() -> None:
    async with (
        running(ping_interval=0.2) as sim,
        connect(sim, create_connection=PingRecorder) as ws,
    ):
        assert isinstance(ws, PingRecorder)
        await wait_for(lambda: len(ws.pings) >= 3, "three server pings")
        gaps = [b - a for a, b in itertools.pairwise(ws.pings)]
        assert all(0.1 < gap < 0.6 for gap in gaps)


async def test_snapshot_then_updates_with_seq_plus_one() -> None:
    async with running(update_rate=50) as sim, connect(sim) as ws:
        match_id = live_ids(sim, "soccer")[0]
        await subscribe(ws, match_id)
        frames = await frames_until(ws, lambda got: len(got) >= 20)
        assert frames[0]["op"] == "snapshot"
        assert all(f["op"] == "update" for f in frames[1:])
        assert all(f["match_id"] == f["data"]["match_id"] == match_id for f in frames)
        seqs = [f["data"]["seq"] for f in frames]
        assert seqs == list(range(seqs[0], seqs[0] + 20))
        for frame in frames:
            assert frame["data"] == await _state_at(sim, match_id, frame["data"]["seq"])


async def _state_at(sim, match_id: int, seq: int) -> object:  # type: ignore[no-untyped-def]
    status, body = await http_get(sim, f"/_sim/matches/{match_id}/states/{seq}")
    assert status == 200
    return body


async def test_many_matches_on_one_connection_are_demultiplexed_by_match_id() -> None:
    async with running(update_rate=20) as sim, connect(sim) as ws:
        ids = live_ids(sim)
        for match_id in ids:
            await subscribe(ws, match_id)
        frames = await frames_until(ws, lambda got: {f["match_id"] for f in got} == set(ids))
        last: dict[int, int] = {}
        for frame in frames:
            seq = frame["data"]["seq"]
            if frame["op"] == "update":
                assert seq == last[frame["match_id"]] + 1
            last[frame["match_id"]] = seq


async def test_unsubscribe_stops_updates_and_resubscribe_sends_a_snapshot() -> None:
    async with running(update_rate=50) as sim, connect(sim) as ws:
        match_id = live_ids(sim)[0]
        await subscribe(ws, match_id)
        await frames_until(ws, lambda got: len(got) >= 3)
        await subscribe(ws, match_id, "unsubscribe")
        # Ask for another match: once its snapshot arrives, nothing of the first may follow.
        other = live_ids(sim)[1]
        await subscribe(ws, other)
        await frames_until(ws, lambda got: bool(got) and got[-1]["op"] == "snapshot")
        seq_then = sim.hub.feeds[match_id].engine.seq
        after = await frames_until(ws, lambda got: len(got) >= 10)
        assert {f["match_id"] for f in after} == {other}
        assert sim.hub.feeds[match_id].engine.seq > seq_then  # the match kept playing
        await subscribe(ws, other)  # re-subscribing to a held match: a snapshot again
        again = await frames_until(ws, lambda got: bool(got) and got[-1]["op"] == "snapshot")
        assert again[-1]["match_id"] == other


async def test_error_codes_keep_the_connection() -> None:
    async with running(keys=KEYS) as sim, connect(sim, "soccer-only") as ws:
        await subscribe(ws, 90000)
        assert await next_frame(ws) == {
            "op": "error",
            "match_id": 90000,
            "code": "sport_not_enabled",
            "error": "sport cricket is not enabled for this key",
        }
        await subscribe(ws, 12345)
        error = await next_frame(ws)
        assert (error["code"], error["match_id"]) == ("match_not_found", 12345)
        for bad in ("not json", "[1]", '{"action":"watch","match_id":1}', '{"action":"subscribe"}'):
            await ws.send(bad)
            error = await next_frame(ws)
            assert error["op"] == "error"
            assert error["code"] == "invalid_message"
            assert isinstance(error["error"], str)
        await subscribe(ws, 41000)
        assert (await next_frame(ws))["op"] == "snapshot"


async def test_subscription_limit_per_connection() -> None:
    async with running(max_subscriptions=2, soccer=3) as sim, connect(sim) as ws:
        for match_id in (41000, 41001, 41002):
            await subscribe(ws, match_id)
        frames = await frames_until(ws, lambda got: any(f["op"] == "error" for f in got))
        error = next(f for f in frames if f["op"] == "error")
        assert (error["code"], error["match_id"]) == ("subscription_limit", 41002)
        await subscribe(ws, 41000)  # already held: not a new subscription
        again = await frames_until(ws, lambda got: any(f["op"] == "snapshot" for f in got))
        assert [f["match_id"] for f in again if f["op"] == "snapshot"] == [41000]
        async with connect(sim) as second:  # the cap is per connection
            await subscribe(second, 41002)
            assert (await next_frame(second))["op"] == "snapshot"


async def test_catalogue_endpoint_lists_every_match() -> None:
    async with running(soccer=20, cricket=10) as sim:
        status, listing = await http_get(sim, "/v1/matches")
        assert status == 200
        assert [m["match_id"] for m in listing] == [*range(41000, 41020), *range(90000, 90010)]
        assert set(listing[0]) == {"match_id", "sport", "competition", "home", "away", "status"}
        statuses = [m["status"] for m in listing]
        assert statuses.count("scheduled") == 3
        assert statuses.count("finished") == 3


async def test_same_seed_same_matches() -> None:
    """The same states at start (wall-clock fields aside), whenever the simulator starts."""

    async def states(seed: int) -> list[dict[str, object]]:
        async with running(seed=seed) as sim:
            initial = []
            for match_id, feed in sim.hub.feeds.items():
                first_seq = feed.history[0][0]
                _, state = await http_get(sim, f"/_sim/matches/{match_id}/states/{first_seq}")
                initial.append({**state, "updated_at": None, "start_time": None})
            return initial

    assert await states(3) == await states(3)
    assert await states(3) != await states(4)


async def test_speed_plays_faster() -> None:
    async with running(speed=600) as sim, connect(sim) as ws:
        match_id = live_ids(sim, "cricket")[0]  # a ball every 40 s of play
        await subscribe(ws, match_id)
        frames = await frames_until(ws, lambda got: len(got) >= 5)
        assert [f["op"] for f in frames] == ["snapshot"] + ["update"] * 4


async def test_frames_are_plain_json_text() -> None:
    async with running() as sim, connect(sim) as ws:
        await subscribe(ws, live_ids(sim)[0])
        message = await asyncio.wait_for(ws.recv(), 5)
        assert isinstance(message, str)
        assert json.loads(message)["op"] == "snapshot"
