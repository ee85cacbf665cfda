"""The consumer examples of ``examples/`` read what the daemon wrote, every record of it.

Each example (Java with ``GenericRecord`` and with generated ``SpecificRecord`` classes, Go,
Python) runs as a user runs it, against the test broker, and prints one JSON line per record;
this module checks every line against the topic and the simulator.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from ingester.encode import SingleObjectEncoder
from ingester.encode.schemas import parse_avro_schema
from tests.examples.builds import EXAMPLES, SCHEMAS, JavaBuild
from tests.examples.conftest import NAMESPACE, Written, check_lines

# One worker runs the module, so the daemon writes the topic (``written``) once per run.
pytestmark = pytest.mark.xdist_group("examples-written")

#: A consumer: (bootstrap, topic, max records, schemas folder) -> its command line.
Command = Callable[[str, str, int, Path], list[str]]


@pytest.fixture(params=["java-generic", "java-specific", "go", "python"])
def consumer(request: pytest.FixtureRequest) -> Command:
    """The command line of one example consumer (built first when needed)."""
    name: str = request.param
    if name.startswith("java"):
        java: JavaBuild = request.getfixturevalue("java_build")
        mode = name.removeprefix("java-")
        return lambda b, t, n, s: java.command("LiveScoresConsumer", mode, b, t, str(s), str(n))
    if name == "go":
        binary: Path = request.getfixturevalue("go_binary")
        return lambda b, t, n, s: [str(binary), b, t, str(s), str(n)]
    script = EXAMPLES / "python" / "live_scores_consumer.py"
    return lambda b, t, n, s: [sys.executable, str(script), b, t, str(n), "--schemas-dir", str(s)]


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


async def produce(
    bootstrap: str, topic: str, records: list[tuple[bytes | None, bytes | None, dict[str, bytes]]]
) -> None:
    """Write (key, value, headers) records to ``topic``, in order."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for key, value, headers in records:
            await producer.send_and_wait(topic, value, key=key, headers=list(headers.items()))
    finally:
        await producer.stop()


def test_every_record_is_decoded_and_matches_the_simulator(
    consumer: Command, written: Written
) -> None:
    done = run(consumer(written.bootstrap, written.topic, len(written.records), SCHEMAS))
    assert done.returncode == 0, done.stderr[-3000:]
    check_lines([json.loads(line) for line in done.stdout.splitlines()], written)


async def test_a_value_of_an_unknown_schema_stops_the_consumer(
    consumer: Command, written: Written, unique_topic: str
) -> None:
    """Fails on purpose: a value whose fingerprint no ``.avsc`` has is an error, not a skip."""
    good = written.records[0]
    foreign = b"\xc3\x01" + bytes.fromhex("0123456789abcdef") + (good.value or b"")[10:]
    await produce(
        written.bootstrap,
        unique_topic,
        [(good.key, good.value, good.headers), (good.key, foreign, good.headers)],
    )

    done = run(consumer(written.bootstrap, unique_topic, 2, SCHEMAS))
    assert done.returncode == 1, (done.stdout, done.stderr[-3000:])
    assert len(done.stdout.splitlines()) == 1  # the good record, then the stop
    assert "efcdab8967452301" in done.stderr or "0123456789abcdef" in done.stderr, done.stderr


async def test_a_value_of_an_earlier_release_is_decoded(
    consumer: Command, written: Written, unique_topic: str, tmp_path: Path
) -> None:
    """A release without ``updated_at`` (compatible: the field has a default) in
    ``released/``: its values are found by fingerprint, and read in today's shape or in theirs."""
    shutil.copytree(SCHEMAS, tmp_path / "schemas")
    definition = json.loads((SCHEMAS / "soccer.avsc").read_text())
    definition["fields"] = [f for f in definition["fields"] if f["name"] != "updated_at"]
    (tmp_path / "schemas" / "released" / "soccer.v0.avsc").write_text(json.dumps(definition))
    soccer = next(r for r in written.records if r.headers["sport"] == b"soccer")
    assert soccer.decoded is not None
    value = SingleObjectEncoder(parse_avro_schema(definition)).encode(soccer.decoded)
    assert value[2:10] not in {r.value[2:10] for r in written.records if r.value}
    await produce(written.bootstrap, unique_topic, [(soccer.key, value, soccer.headers)])

    done = run(consumer(written.bootstrap, unique_topic, 1, tmp_path / "schemas"))

    assert done.returncode == 0, done.stderr[-3000:]
    (line,) = [json.loads(line) for line in done.stdout.splitlines()]
    assert line["name"] == line["schema"] == f"{NAMESPACE}.SoccerMatchState"
    assert line["key"] == str(line["record"]["match_id"]) == soccer.key.decode()
    assert line["record"]["score"] == soccer.decoded["score"]
    assert line["record"]["seq"] == soccer.decoded["seq"]
