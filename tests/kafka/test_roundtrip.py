"""aiokafka against the local Kafka 4 broker: produce, consume in a group, admin, idempotence."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType


async def test_record_is_produced_and_read_back(kafka, unique_topic):
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers)
    await producer.start()
    try:
        meta = await producer.send_and_wait(
            unique_topic, b"value", key=b"41282", headers=[("sport", b"football")]
        )
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        unique_topic, bootstrap_servers=kafka.bootstrap_servers, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        record = await asyncio.wait_for(consumer.getone(), 20)
    finally:
        await consumer.stop()
    assert (record.key, record.value, record.offset) == (b"41282", b"value", meta.offset)
    assert list(record.headers) == [("sport", b"football")]


async def test_consumer_group_commits_and_resumes(kafka, topic_factory):
    topic = await topic_factory(partitions=3)
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers, linger_ms=5)
    await producer.start()
    try:
        for i in range(30):
            await producer.send(topic, str(i).encode(), key=str(i % 5).encode())
        await producer.flush()
    finally:
        await producer.stop()

    async def consume(n: int) -> list[bytes]:
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=kafka.bootstrap_servers,
            group_id=f"{topic}-group",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            values: list[bytes] = []
            while len(values) < n:
                batch = await asyncio.wait_for(consumer.getmany(timeout_ms=1000), 20)
                values += [r.value for records in batch.values() for r in records]
            await consumer.commit()
            return values
        finally:
            await consumer.stop()

    first = await consume(30)
    assert sorted(int(v) for v in first) == list(range(30))
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka.bootstrap_servers, group_id=f"{topic}-group"
    )
    await consumer.start()
    try:
        committed = [await consumer.committed(TopicPartition(topic, p)) for p in range(3)]
    finally:
        await consumer.stop()
    assert sum(c or 0 for c in committed) == 30


async def test_admin_creates_topics_with_configs(kafka, topic_factory):
    topic = await topic_factory(
        partitions=4, config={"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0.01"}
    )
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers)
    await admin.start()
    try:
        [description] = await admin.describe_topics([topic])
        configs = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    finally:
        await admin.close()
    assert len(description["partitions"]) == 4
    [resource] = configs[0].to_object()["resources"]
    entries = {e["config_names"]: e["config_value"] for e in resource["config_entries"]}
    assert entries["cleanup.policy"] == "compact"


async def test_idempotent_producer(kafka, unique_topic):
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka.bootstrap_servers, enable_idempotence=True, acks="all"
    )
    await producer.start()
    try:
        offsets = [
            (await producer.send_and_wait(unique_topic, f"{i}".encode(), key=b"1")).offset
            for i in range(5)
        ]
    finally:
        await producer.stop()
    assert offsets == [0, 1, 2, 3, 4]
