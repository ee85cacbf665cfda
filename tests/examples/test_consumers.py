"""The consumer examples of ``examples/`` read what the daemon wrote, every record of it.

Each example (Java with ``GenericRecord`` and with generated ``SpecificRecord`` classes, Go,
Python) runs as a user runs it, against the test broker, and prints one JSON line per record;
this module checks every line against the topic and the simulator.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from tests.examples.builds import EXAMPLES, SCHEMAS, JavaBuild
from tests.examples.conftest import Written, check_lines

#: A consumer: (bootstrap, topic, max records) -> its command line.
Command = Callable[[str, str, int], list[str]]


@pytest.fixture(params=["java-generic", "java-specific", "go", "python"])
def consumer(request: pytest.FixtureRequest) -> Command:
    """The command line of one example consumer (built first when needed)."""
    name: str = request.param
    if name.startswith("java"):
        java: JavaBuild = request.getfixturevalue("java_build")
        mode = name.removeprefix("java-")
        return lambda b, t, n: java.command("LiveScoresConsumer", mode, b, t, str(SCHEMAS), str(n))
    if name == "go":
        binary: Path = request.getfixturevalue("go_binary")
        return lambda b, t, n: [str(binary), b, t, str(SCHEMAS), str(n)]
    script = EXAMPLES / "python" / "live_scores_consumer.py"
    return lambda b, t, n: [sys.executable, str(script), b, t, str(n)]


def run(command: list[str], timeout: float = 180.0) -> subprocess.CompletedProcess[str]:
    """Run an example to its end (it stops after its record count, or on an error)."""
    return subprocess.run(
        command,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_every_record_is_decoded_and_matches_the_simulator(
    consumer: Command, written: Written
) -> None:
    done = run(consumer(written.bootstrap, written.topic, len(written.records)))
    assert done.returncode == 0, done.stderr[-3000:]
    check_lines([json.loads(line) for line in done.stdout.splitlines()], written)


async def test_a_value_of_an_unknown_schema_stops_the_consumer(
    consumer: Command, written: Written, unique_topic: str
) -> None:
    """Fails on purpose: a value whose fingerprint no ``.avsc`` has is an error, not a skip."""
    good = written.records[0]
    foreign = b"\xc3\x01" + bytes.fromhex("0123456789abcdef") + (good.value or b"")[10:]
    producer = AIOKafkaProducer(bootstrap_servers=written.bootstrap)
    await producer.start()
    try:
        for value in (good.value, foreign):
            await producer.send_and_wait(
                unique_topic, value, key=good.key, headers=list(good.headers.items())
            )
    finally:
        await producer.stop()

    done = run(consumer(written.bootstrap, unique_topic, 2))
    assert done.returncode == 1, (done.stdout, done.stderr[-3000:])
    assert len(done.stdout.splitlines()) == 1  # the good record, then the stop
    assert "efcdab8967452301" in done.stderr or "0123456789abcdef" in done.stderr, done.stderr
