"""Ceilings (b) and (c): the in-process hot path and a bare aiokafka producer.

Both run on the frames ceiling (a) sampled from the simulator, so sizes and sports match
what the ingester sees.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from ingester.codecs import codecs_for
from ingester.convert.registry import load_converters
from ingester.encode.encoders import build_encoder
from ingester.produce.compression import apply_compression_level
from sportrix_devkit.bench.hot_path import measure_hot_path

__all__ = ["EncodedRecord", "encode_frames", "hot_path_rate", "producer_rate"]

#: What the daemon's producer uses (``ingester.app.Daemon._new_producer``), lz4 at the
#: daemon's default level.
PRODUCER_SETTINGS = {
    "acks": "all",
    "enable_idempotence": True,
    "linger_ms": 5,
    "compression_type": "lz4",
    "max_batch_size": 512 * 1024,
    "max_request_size": 4 * 1024 * 1024,
}


@dataclass(frozen=True, slots=True)
class EncodedRecord:
    """A record as the pipeline would hand it to the producer."""

    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


def hot_path_rate(frames: Sequence[bytes], topic: str) -> float:
    """Frames/s of decode → validate → convert → encode on ``frames`` (one core)."""
    converters = load_converters()
    encoder = build_encoder(converters.schemas, topic=topic)
    micros = measure_hot_path(frames, converters, encoder, passes=3)["all"]
    return 1e6 / micros if micros else 0.0


def encode_frames(frames: Sequence[bytes], topic: str) -> list[EncodedRecord]:
    """The records the pipeline makes of ``frames`` (single-object encoding)."""
    converters = load_converters()
    codecs = codecs_for(converters, build_encoder(converters.schemas, topic=topic))
    records = []
    for raw in frames:
        frame = orjson.loads(raw)
        data = frame["data"]
        codec = codecs.get(data["sport"])
        if codec is None:
            continue
        _, value = codec.record(frame["op"], data, 0, json_native=True)
        headers = [
            ("sport", data["sport"].encode()),
            ("op", frame["op"].encode()),
            ("schema", codec.schema_name.encode()),
            ("producer", b"bench"),
        ]
        records.append(EncodedRecord(str(frame["match_id"]).encode(), value, headers))
    return records


async def producer_rate(
    bootstrap: str, topic: str, records: Sequence[EncodedRecord], seconds: float, batched: bool
) -> tuple[float, float]:
    """Records/s acknowledged by one producer sending ``records`` round and round, and the
    CPU microseconds it spent per record (this process's CPU time over the window).

    ``batched=False``: ``send()`` per record, one ``gather`` per 2,000 (what the sink did);
    ``batched=True``: one ``create_batch()``/``send_batch()`` per partition per 2,000.
    """
    apply_compression_level(str(PRODUCER_SETTINGS["compression_type"]), None)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, **PRODUCER_SETTINGS)
    await producer.start()
    try:
        partitions = sorted(await producer.partitions_for(topic))
        chunk = 2000
        sent = 0
        position = 0
        started, cpu_started = time.perf_counter(), time.process_time()
        deadline = started + seconds
        while time.perf_counter() < deadline:
            batch = [records[(position + i) % len(records)] for i in range(chunk)]
            position += chunk
            if batched:
                await _send_batched(producer, topic, partitions, batch)
            else:
                futures = [
                    await producer.send(topic, r.value, key=r.key, headers=r.headers) for r in batch
                ]
                await asyncio.gather(*futures)
            sent += chunk
        cpu = time.process_time() - cpu_started
        return sent / (time.perf_counter() - started), cpu / sent * 1e6
    finally:
        await producer.stop()


async def _send_batched(
    producer: AIOKafkaProducer, topic: str, partitions: list[int], batch: list[EncodedRecord]
) -> None:
    from aiokafka.partitioner import murmur2

    builders: dict[int, Any] = {}
    futures = []
    for record in batch:
        partition = partitions[(murmur2(record.key) & 0x7FFFFFFF) % len(partitions)]
        builder = builders.get(partition)
        if builder is None:
            builder = builders[partition] = producer.create_batch()
        if (
            builder.append(
                key=record.key, value=record.value, timestamp=None, headers=record.headers
            )
            is None
        ):
            futures.append(await producer.send_batch(builder, topic, partition=partition))
            builder = builders[partition] = producer.create_batch()
            builder.append(
                key=record.key, value=record.value, timestamp=None, headers=record.headers
            )
    for partition, builder in builders.items():
        futures.append(await producer.send_batch(builder, topic, partition=partition))
    await asyncio.gather(*futures)
