"""Start, stop, restart and failure behaviour of LocalKafka itself."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from sportrix_devkit.localkafka import LocalKafka, LocalKafkaError, can_produce
from sportrix_devkit.localkafka import broker as broker_module
from sportrix_devkit.waiting import wait_until


def java_brokers_on(data_dir: Path) -> list[int]:
    """Pids of ``kafka.Kafka`` processes whose command line names ``data_dir``."""
    out = subprocess.run(
        ["pgrep", "-f", f"kafka.Kafka {data_dir}"], capture_output=True, text=True, check=False
    ).stdout
    return [int(pid) for pid in out.split()]


async def read_all(bootstrap: str, topic: str, n: int) -> list[bytes]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    try:
        values: list[bytes] = []
        while len(values) < n:
            record = await asyncio.wait_for(consumer.getone(), 30)
            values.append(record.value)
        return values
    finally:
        await consumer.stop()


async def send_one(address: str, topic: str, value: bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=address, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, value)
    finally:
        await producer.stop()


async def test_restart_keeps_data_and_address(local_kafka, unique_topic):
    address = local_kafka.bootstrap_servers
    await send_one(address, unique_topic, b"before")

    await asyncio.to_thread(local_kafka.restart)

    assert local_kafka.bootstrap_servers == address
    await send_one(address, unique_topic, b"after")
    assert await read_all(address, unique_topic, 2) == [b"before", b"after"]


@pytest.mark.kafka
def test_stop_leaves_no_java_process(tmp_path):
    broker = LocalKafka(tmp_path / "kafka").start()
    data_dir = broker.data_dir
    assert len(java_brokers_on(data_dir)) == 1
    broker.stop()
    assert java_brokers_on(data_dir) == []
    assert not broker.running
    broker.stop()  # idempotent


@pytest.mark.kafka
def test_broker_dies_with_a_killed_python(tmp_path):
    script = (
        "import sys\n"
        "from sportrix_devkit.localkafka import LocalKafka\n"
        "broker = LocalKafka(sys.argv[1]).start()\n"
        "print(broker.bootstrap_servers, flush=True)\n"
        "sys.stdin.read()\n"
    )
    data_dir = tmp_path / "kafka"
    owner = subprocess.Popen(
        [sys.executable, "-c", script, str(data_dir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert owner.stdout is not None
        assert owner.stdout.readline().startswith("127.0.0.1:")
        assert len(java_brokers_on(data_dir)) == 1
    finally:
        os.kill(owner.pid, signal.SIGKILL)
        owner.wait()
    wait_until(
        lambda: not java_brokers_on(data_dir),
        "the broker to die with its owner",
        15,
        interval=0.2,
        details=lambda: f"still running: {java_brokers_on(data_dir)}",
    )


@pytest.mark.kafka
def test_failed_start_shows_the_broker_log(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        broker = LocalKafka(tmp_path / "kafka", port=taken.getsockname()[1])
        with pytest.raises(LocalKafkaError, match="exited during start-up") as raised:
            broker.start()
    assert "Address already in use" in str(raised.value)
    assert java_brokers_on(broker.data_dir) == []


@pytest.mark.kafka
def test_a_picked_port_taken_before_the_broker_binds_it_is_picked_again(tmp_path, monkeypatch):
    """Parallel test workers race for free ports: a port found free and then taken by
    someone else before the broker bound it costs one more start, not a failure."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        pick = broker_module.free_port
        handed_out: list[int] = []

        def free_port_taken_first() -> int:
            handed_out.append(busy if not handed_out else pick())
            return handed_out[-1]

        monkeypatch.setattr(broker_module, "free_port", free_port_taken_first)
        broker = LocalKafka(tmp_path / "kafka").start()
        try:
            assert handed_out[0] == busy, "the first start was given the taken port"
            assert busy not in (broker.port, broker.controller_port)
            assert can_produce({"bootstrap_servers": broker.bootstrap_servers})
        finally:
            broker.stop()
    assert java_brokers_on(broker.data_dir) == []


def test_refuses_to_wipe_a_foreign_directory(tmp_path):
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(LocalKafkaError, match="refusing to wipe"):
        LocalKafka(tmp_path).start()
    assert (tmp_path / "precious.txt").read_text() == "keep me"


def test_addresses_need_a_started_broker(tmp_path):
    with pytest.raises(LocalKafkaError, match="call start"):
        _ = LocalKafka(tmp_path).bootstrap_servers
    with pytest.raises(LocalKafkaError, match="secure=True"):
        _ = LocalKafka(tmp_path).secure_bootstrap_servers
