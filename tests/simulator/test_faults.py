"""Fault injection flags and the ``/_sim/`` control endpoints."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from websockets.exceptions import ConnectionClosedError, ConnectionClosedOK, InvalidStatus

from sportrix_devkit.simulator.config import MALFORMED_KINDS
from tests.simulator.helpers import (
    connect,
    frames_until,
    http_get,
    live_ids,
    next_frame,
    running,
    subscribe,
    wait_for,
)


async def _closed(ws) -> BaseException:  # type: ignore[no-untyped-def]
    """Read until the connection ends; the exception it ended with."""
    async with asyncio.timeout(5):
        while True:
            try:
                await ws.recv()
            except (ConnectionClosedOK, ConnectionClosedError) as exc:
                return exc


async def test_drop_every_closes_with_a_close_frame() -> None:
    async with running(drop_every=0.3) as sim, connect(sim) as ws:
        closed = await _closed(ws)
        assert closed.rcvd is not None  # type: ignore[attr-defined]
        assert closed.rcvd.code in (1001, 1011, 1013)  # type: ignore[attr-defined]
        await wait_for(lambda: sim.stats()["drops"].get("close") == 1, "one close drop")


async def test_drop_every_abrupt_has_no_close_frame() -> None:
    async with running(drop_every=0.3, drop_mode="abrupt") as sim, connect(sim) as ws:
        closed = await _closed(ws)
        assert closed.rcvd is None  # type: ignore[attr-defined]


@pytest.mark.parametrize(("mode", "code"), [("close", 1013), ("abrupt", None)])
async def test_drop_endpoint(mode: str, code: int | None) -> None:
    async with running() as sim, connect(sim) as ws, connect(sim) as other:
        query = f"mode={mode}" + (f"&code={code}" if code else "")
        status, body = await http_get(sim, f"/_sim/drop?{query}")
        assert (status, body) == (200, {"dropped": 2, "mode": mode})
        for closed in (await _closed(ws), await _closed(other)):
            rcvd = closed.rcvd  # type: ignore[attr-defined]
            assert (rcvd.code if rcvd else None) == code


async def test_refuse_for_answers_503_then_recovers() -> None:
    async with running(refuse_for=0.5) as sim:
        with pytest.raises(InvalidStatus) as refused:
            async with connect(sim):
                pass
        assert refused.value.response.status_code == 503
        await asyncio.sleep(0.5)  # the refusal window itself
        async with connect(sim) as ws:
            await subscribe(ws, live_ids(sim)[0])
            assert (await next_frame(ws))["op"] == "snapshot"
        assert sim.stats()["handshakes_refused"] == {"service_unavailable": 1}


async def test_refuse_endpoint_with_status() -> None:
    async with running() as sim:
        assert (await http_get(sim, "/_sim/refuse?seconds=30&status=502"))[0] == 200
        with pytest.raises(InvalidStatus) as refused:
            async with connect(sim):
                pass
        assert refused.value.response.status_code == 502


async def test_malformed_frames_of_every_kind_are_injected_and_counted() -> None:
    async with running(update_rate=100, malformed_fraction=0.5) as sim, connect(sim) as ws:
        match_id = live_ids(sim, "soccer")[0]
        await subscribe(ws, match_id)
        seen: dict[str, int] = {}
        async with asyncio.timeout(10):
            while not set(MALFORMED_KINDS) <= set(seen):
                kind = _kind(await ws.recv())
                seen[kind] = seen.get(kind, 0) + 1
        await http_get(sim, "/_sim/malformed?fraction=0")
        stats = (await http_get(sim, "/_sim/stats"))[1]
        sent = stats["malformed_sent"]
        for kind in MALFORMED_KINDS:
            assert sent["by_kind"][kind] >= seen[kind]
            assert set(sent["match_ids"][kind]) == {match_id}


def _kind(message: str | bytes) -> str:
    """Which malformed kind a frame is, or ``valid``."""
    try:
        frame = json.loads(message)
    except ValueError:
        return "bad_json"
    if not isinstance(frame, dict):
        return "not_object"
    if "op" not in frame:
        return "no_op"
    if frame["op"] not in ("snapshot", "update"):
        return "unknown_op"
    data = frame["data"]
    if "status" not in data:
        return "missing_field"
    if not isinstance(data["seq"], int):
        return "wrong_type"
    if data["sport"] not in ("soccer", "cricket"):
        return "unknown_sport"
    return "valid"


async def test_malformed_endpoint_limits_kinds_and_valid_frames_stay_whole() -> None:
    async with running(update_rate=100) as sim, connect(sim) as ws:
        status, body = await http_get(sim, "/_sim/malformed?fraction=1&kinds=unknown_op")
        assert (status, body) == (200, {"fraction": 1.0, "kinds": ["unknown_op"]})
        await subscribe(ws, live_ids(sim)[0])
        frames = await frames_until(ws, lambda got: len(got) >= 21)
        kinds = [_kind(json.dumps(f)) for f in frames]
        assert kinds[0] == "valid"  # the snapshot
        assert kinds[1:] == ["valid", "unknown_op"] * 10
        seqs = [f["data"]["seq"] for f in frames if f["op"] == "update"]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # nothing lost
        assert (await http_get(sim, "/_sim/malformed?fraction=2"))[0] == 400


async def test_stall_stops_reading_and_writing_then_resumes() -> None:
    async with running(update_rate=50) as sim, connect(sim) as ws:
        match_id = live_ids(sim)[0]
        await subscribe(ws, match_id)
        await frames_until(ws, lambda got: len(got) >= 2)
        stall = 0.6
        assert (await http_get(sim, f"/_sim/stall?seconds={stall}"))[0] == 200
        started = time.monotonic()
        await subscribe(ws, live_ids(sim)[1])  # not read while stalled
        # Drain what was already on the wire, then nothing comes until the stall ends.
        frames = await frames_until(ws, lambda got: any(f["op"] == "snapshot" for f in got))
        assert time.monotonic() - started >= stall * 0.9
        updates = [f["data"]["seq"] for f in frames if f["match_id"] == match_id]
        assert updates == list(range(updates[0], updates[0] + len(updates)))
        assert sim.stats()["stalls"] == 1


async def test_stall_after_flag() -> None:
    async with running(update_rate=50, stall_after=0.2, stall_for=0.5) as sim:
        await wait_for(lambda: sim.stats()["stalls"] == 1, "one stall")
        assert sim.stats()["faults"]["stalled_for"] > 0
        await wait_for(lambda: sim.stats()["faults"]["stalled_for"] == 0, "the stall to end")


async def test_finish_endpoint_ends_a_match_and_subscribers_see_it() -> None:
    async with running() as sim, connect(sim) as ws:
        match_id = live_ids(sim, "cricket")[0]
        await subscribe(ws, match_id)
        assert (await next_frame(ws))["op"] == "snapshot"
        assert (await http_get(sim, f"/_sim/finish?match_id={match_id}"))[0] == 200
        frames = await frames_until(
            ws, lambda got: bool(got) and got[-1]["data"]["status"] == "finished"
        )
        assert frames[-1]["data"]["last_event"]["type"] == "match_end"
        stats = (await http_get(sim, "/_sim/stats"))[1]["matches"][str(match_id)]
        assert stats["status"] == "finished"
        assert stats["last_seq"] == frames[-1]["data"]["seq"]
        assert (await http_get(sim, "/_sim/finish?match_id=1"))[0] == 400


async def test_keys_endpoint_adds_and_revokes() -> None:
    async with running() as sim:
        _, body = await http_get(sim, "/_sim/keys?add=fresh:cricket")
        assert body == {"added": {"key": "fresh", "sports": ["cricket"]}}
        async with connect(sim, "fresh") as ws:
            await subscribe(ws, 41000)
            assert (await next_frame(ws))["code"] == "sport_not_enabled"
        _, body = await http_get(sim, "/_sim/keys?revoke=fresh")
        assert body == {"revoked": {"key": "fresh", "known": True}}
        with pytest.raises(InvalidStatus):
            async with connect(sim, "fresh"):
                pass


async def test_match_state_history_and_eviction() -> None:
    async with running(update_rate=100, history=5) as sim:
        match_id = live_ids(sim)[0]
        feed = sim.hub.feeds[match_id]
        first = feed.engine.seq
        await wait_for(lambda: feed.engine.seq >= first + 10, "ten more updates")
        status, current = await http_get(sim, f"/_sim/matches/{match_id}")
        assert status == 200
        assert current["match_id"] == match_id
        evicted = feed.history[0][0] - 1
        assert (await http_get(sim, f"/_sim/matches/{match_id}/states/{evicted}"))[0] == 404
        kept = feed.history[-1][0]
        status, state = await http_get(sim, f"/_sim/matches/{match_id}/states/{kept}")
        assert (status, state["seq"]) == (200, kept)
        assert (await http_get(sim, "/_sim/matches/1"))[0] == 404
        assert (await http_get(sim, "/_sim/nothing"))[0] == 404


async def test_stats_count_frames_by_op_sport_and_match() -> None:
    async with running(update_rate=50) as sim, connect(sim) as ws:
        soccer, cricket = live_ids(sim, "soccer")[0], live_ids(sim, "cricket")[0]
        await subscribe(ws, soccer)
        await subscribe(ws, cricket)
        await subscribe(ws, 1)
        frames = await frames_until(ws, lambda got: len(got) >= 12)
        await subscribe(ws, soccer, "unsubscribe")
        await subscribe(ws, cricket, "unsubscribe")
        await wait_for(lambda: not sim.hub.feeds[soccer].subscribers, "no subscriber left")
        stats = (await http_get(sim, "/_sim/stats"))[1]
        by_op = stats["frames_sent"]["by_op"]
        assert by_op["snapshot"] == 2
        assert by_op["error"] == 1
        assert by_op["update"] >= len([f for f in frames if f["op"] == "update"])
        assert stats["frames_sent"]["by_sport"]["soccer"] >= 1
        assert stats["connections_open"] == 1
        match = stats["matches"][str(soccer)]
        assert match["snapshots_sent"] == 1
        assert match["updates_sent"] >= 1


async def test_ignore_leaves_the_next_subscribes_unanswered() -> None:
    async with running() as sim, connect(sim) as ws:
        first, second = live_ids(sim)[:2]
        status, body = await http_get(sim, f"/_sim/ignore?match_id={first}&count=2")
        assert (status, body) == (200, {"ignoring": {"match_id": first, "subscribes": 2}})
        for _ in range(2):
            await subscribe(ws, first)
        await subscribe(ws, second)  # answered: the two before it were not
        frame = await next_frame(ws)
        assert (frame["op"], frame["match_id"]) == ("snapshot", second)
        await subscribe(ws, first)
        frames = await frames_until(ws, lambda fs: bool(fs) and fs[-1]["match_id"] == first)
        assert frames[-1]["op"] == "snapshot"
        assert sim.stats()["client_messages"]["ignored_subscribe"] == 2
        assert (await http_get(sim, "/_sim/ignore?count=1"))[0] == 400


async def test_pad_makes_a_matchs_snapshots_larger() -> None:
    async with running() as sim, connect(sim, max_size=None) as ws:
        match_id = live_ids(sim)[0]
        status, body = await http_get(sim, f"/_sim/pad?match_id={match_id}&bytes=100000")
        assert (status, body) == (200, {"padding": {"match_id": match_id, "bytes": 100000}})
        await subscribe(ws, match_id)
        raw = await ws.recv()
        snapshot = json.loads(raw)
        assert (snapshot["op"], snapshot["padding"]) == ("snapshot", "x" * 100000)
        assert snapshot["data"] == json.loads(sim.hub.feeds[match_id].data_json)
        await http_get(sim, f"/_sim/pad?match_id={match_id}&bytes=0")
        await subscribe(ws, match_id)
        frames = await frames_until(ws, lambda fs: bool(fs) and fs[-1]["op"] == "snapshot")
        assert "padding" not in frames[-1]
        assert (await http_get(sim, "/_sim/pad?match_id=1&bytes=-1"))[0] == 400
