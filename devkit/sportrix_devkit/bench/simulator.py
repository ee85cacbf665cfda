"""Measure how many frames/s one simulator process pushes to one connection.

``python -m sportrix_devkit.bench.simulator`` starts ``sportrix-ingester simulate`` in a child
process, subscribes one bare ``websockets`` connection to every live match (the benchmark's bare
client, :func:`sportrix_devkit.bench.client.drain`), counts the frames received over a window
and prints the rate. See ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import urllib.request

from sportrix_devkit.bench.client import drain
from sportrix_devkit.simulator.engines import engine_kinds
from sportrix_devkit.waiting import wait_until

__all__ = ["main"]


def _wait_for_catalogue(base: str, timeout: float) -> list[dict[str, object]]:
    def catalogue() -> list[dict[str, object]]:
        with urllib.request.urlopen(f"{base}/v1/matches", timeout=1) as response:
            listing: list[dict[str, object]] = json.load(response)
            return listing

    return wait_until(catalogue, f"{base}/v1/matches", timeout, retry_on=(OSError,))


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; prints one line with frames/s."""
    parser = argparse.ArgumentParser(prog="python -m sportrix_devkit.bench.simulator")
    parser.add_argument("--port", type=int, default=18765)
    sports = list(engine_kinds())
    parser.add_argument("--sport", choices=sports, default=sports[0], help="the sport played")
    parser.add_argument("--matches", type=int, default=500, help="matches to subscribe")
    parser.add_argument("--update-rate", type=float, default=200.0, help="frames/s per match")
    parser.add_argument("--seconds", type=float, default=5.0, help="counting window")
    args = parser.parse_args(argv)
    command = [
        sys.executable, "-m", "ingester", "simulate", "--port", str(args.port),
        *(f"--matches={sport}={args.matches if sport == args.sport else 0}" for sport in sports),
        "--seed", "1",
        "--update-rate", str(args.update_rate), "--log-level", "WARNING",
    ]  # fmt: skip
    server = subprocess.Popen(command)
    try:
        base = f"http://127.0.0.1:{args.port}"
        live = [m["match_id"] for m in _wait_for_catalogue(base, 60) if m["status"] == "live"]
        ids = [match_id for match_id in live if isinstance(match_id, int)]
        spec = {
            "url": f"ws://127.0.0.1:{args.port}/v1/stream", "api_key": "demo-key",
            "match_ids": ids, "per_connection": len(ids), "warmup": 0.5,
            "seconds": args.seconds, "sample": 0,
        }  # fmt: skip
        counted = asyncio.run(drain(spec))
        frames, elapsed = counted["frames"], counted["seconds"]
    finally:
        server.terminate()
        server.wait(10)
    print(
        f"{frames / elapsed:,.0f} frames/s to one connection "
        f"({frames:,} frames in {elapsed:.1f} s, {len(ids)} live matches "
        f"at {args.update_rate:g} frames/s each)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
