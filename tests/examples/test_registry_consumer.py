"""The registry wire format: the daemon with ``SCHEMA_REGISTRY_URL``, read by the Python example
and by ``sportrix-ingester tail``, both through ``ingester.consume.LiveScoresDecoder``.

The registry is the suite's in-test stand-in of the Confluent API (``tests/encode``): no real
Confluent-compatible registry could be run here (``docs/consuming.md``).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestServer

from tests.encode.test_registry import FakeRegistry
from tests.examples.builds import EXAMPLES
from tests.examples.conftest import check_lines, daemon_wrote


async def output_of(*command: str, env: dict[str, str] | None = None) -> list[str]:
    """The stdout lines of a command run without blocking the loop (the registry serves on it)."""
    proc = await asyncio.create_subprocess_exec(
        *command,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    stdout, stderr = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, stderr.decode()[-3000:]
    return stdout.decode().splitlines()


async def test_registry_values_are_read_by_the_example_and_by_tail(
    kafka: Any, tmp_path: Path
) -> None:
    fake = FakeRegistry()
    server = TestServer(fake.app, host="127.0.0.1")
    await server.start_server()
    url = str(server.make_url("/")).rstrip("/")
    bootstrap = str(kafka.bootstrap_servers)
    try:
        async with daemon_wrote(tmp_path, bootstrap, registry_url=url) as written:
            assert all((r.value or b"")[:1] == b"\x00" for r in written.records)
            count = str(len(written.records))
            script = EXAMPLES / "python" / "live_scores_consumer.py"
            lines = await output_of(
                sys.executable, str(script), bootstrap, written.topic, count,
                "--schema-registry-url", url,
            )  # fmt: skip
            check_lines([json.loads(line) for line in lines], written)

            tail = await output_of(
                sys.executable, "-m", "ingester", "tail", "--from-beginning", "--json",
                "--max", count,
                env={
                    "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
                    "INGESTER_TOPIC": written.topic,
                    "SCHEMA_REGISTRY_URL": url,
                },
            )  # fmt: skip
            records = {(r["match_id"], r["op"], r["seq"]) for r in map(json.loads, tail)}
            assert records == {
                (r.decoded["match_id"], r.decoded["op"], r.decoded["seq"])
                for r in written.records
                if r.decoded
            }
    finally:
        await server.close()
