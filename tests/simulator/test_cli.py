"""``sportrix-ingester simulate`` as a separate process, driven over HTTP and WebSocket."""

from __future__ import annotations

import asyncio
import json
import re
import sys
import urllib.request

import pytest
import websockets

from ingester.cli import build_parser
from sportrix_devkit.simulator.cli import config_from_args


def test_flags_build_the_config() -> None:
    args = build_parser().parse_args(
        ["simulate", "--port", "0", "--api-key", "k1", "--api-key", "k2:soccer",
         "--expired-key", "old", "--unscoped-key", "bare", "--soccer", "3", "--cricket", "1",
         "--malformed-kinds", "bad_json,no_op", "--drop-every", "5", "--drop-mode", "abrupt"]
    )  # fmt: skip
    config = config_from_args(args)
    assert [(k.key, k.sports, k.expired, k.scoped) for k in config.keys] == [
        ("k1", None, False, True),
        ("k2", frozenset({"soccer"}), False, True),
        ("old", None, True, True),
        ("bare", None, False, False),
    ]
    assert (config.matches, config.drop_every) == ({"soccer": 3, "cricket": 1}, 5.0)
    assert config.malformed_kinds == ("bad_json", "no_op")


def test_match_counts_by_sport_flag_or_by_name() -> None:
    """``--matches SPORT=N`` names any sport; ``--SPORT N`` wins over it; others: defaults."""
    args = build_parser().parse_args(
        ["simulate", "--matches", "soccer=5", "--matches", "cricket=2", "--cricket", "7"]
    )
    assert config_from_args(args).match_counts() == {"soccer": 5, "cricket": 7}
    default = config_from_args(build_parser().parse_args(["simulate"]))
    assert default.match_counts() == {"soccer": 20, "cricket": 10}


@pytest.mark.parametrize(
    ("flags", "problem"),
    [
        (
            ["--matches", "curling=3"],
            "unknown sport 'curling' (the simulator plays: soccer, cricket)",
        ),
        (["--soccer", "-1"], "match counts must not be negative"),
        (["--soccer", "49001"], "at most 49000 soccer matches"),
        (["--cricket", "10001"], "at most 10000 cricket matches"),
    ],
)
def test_bad_match_counts_are_refused(flags: list[str], problem: str) -> None:
    args = build_parser().parse_args(["simulate", *flags])
    with pytest.raises(ValueError, match=re.escape(problem)):
        config_from_args(args)
    assert args.handler(args) == 2


def test_a_match_count_must_be_sport_equals_number() -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["simulate", "--matches", "soccer"])


def test_bad_flags_exit_2() -> None:
    args = build_parser().parse_args(["simulate", "--malformed-kinds", "nonsense"])
    assert args.handler(args) == 2


async def test_simulate_process_serves_stream_and_catalogue() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ingester", "simulate", "--port", "0", "--soccer", "2",
        "--cricket", "1", "--api-key", "secret", "--speed", "100",
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stderr is not None
    try:
        async with asyncio.timeout(20):
            while not (found := re.search(rb"serving (ws://\S+)", await process.stderr.readline())):
                pass
        url = found[1].decode()
        base = url.replace("ws://", "http://").removesuffix("/v1/stream")
        listing = await asyncio.to_thread(
            lambda: json.load(urllib.request.urlopen(f"{base}/v1/matches", timeout=5))
        )
        assert [m["match_id"] for m in listing] == [41000, 41001, 90000]
        async with websockets.connect(url, additional_headers={"X-API-Key": "secret"}) as ws:
            await ws.send(json.dumps({"action": "subscribe", "match_id": 41000}))
            async with asyncio.timeout(5):
                snapshot = json.loads(await ws.recv())
                update = json.loads(await ws.recv())
        assert (snapshot["op"], update["op"]) == ("snapshot", "update")
        assert update["data"]["seq"] == snapshot["data"]["seq"] + 1
    finally:
        process.terminate()
        await process.wait()


@pytest.mark.parametrize("spec", ["", ":soccer"])
def test_empty_key_is_rejected(spec: str) -> None:
    args = build_parser().parse_args(["simulate", "--api-key", spec])
    with pytest.raises(ValueError, match="empty API key"):
        config_from_args(args)
