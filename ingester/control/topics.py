"""Topic checks at start-up: create what is missing, refuse a config topic not compacted."""

from __future__ import annotations

import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import TopicAlreadyExistsError

from ingester.produce.kafka_client import client_kwargs
from ingester.settings import Settings

__all__ = ["TopicError", "ensure_topics"]

log = logging.getLogger(__name__)


class TopicError(Exception):
    """A topic is unusable as configured; ``str()`` names it and the setting at fault."""


async def ensure_topics(settings: Settings, data_topics: bool = True) -> None:
    """Create missing topics when allowed; check that the config topic is compacted.

    The data and dead-letter topics are checked too unless ``data_topics`` is false. The
    replication factor is ``INGESTER_REPLICATION_FACTOR``, else 3 capped by the number of
    brokers (so a one-broker development cluster works).
    """
    config_topic = settings.config_topic
    wanted = {config_topic: settings.config_partitions}
    if data_topics:
        wanted[settings.topic] = settings.topic_partitions
        wanted[settings.dlq_topic] = settings.topic_partitions
    admin = AIOKafkaAdminClient(**client_kwargs(settings))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in wanted if t not in existing]
        if missing and not settings.create_topics:
            raise TopicError(
                f"topic {missing[0]} does not exist and INGESTER_CREATE_TOPICS is false"
            )
        replicas = settings.replication_factor
        if missing and replicas is None:
            cluster = await admin.describe_cluster()
            replicas = max(1, min(3, len(cluster["brokers"])))
        new = [
            NewTopic(
                name,
                num_partitions=wanted[name],
                replication_factor=replicas or 1,
                topic_configs={"cleanup.policy": "compact"} if name == config_topic else {},
            )
            for name in missing
        ]
        if new:
            try:
                await admin.create_topics(new)
                log.info("created topics %s", ", ".join(missing))
            except TopicAlreadyExistsError:
                pass  # another replica won the race
        policy = await _cleanup_policy(admin, config_topic)
        if "compact" not in policy:
            raise TopicError(
                f"INGESTER_CONFIG_TOPIC {config_topic} has cleanup.policy={policy}; "
                "it must be compacted (cleanup.policy=compact)"
            )
    finally:
        await admin.close()


async def _cleanup_policy(admin: AIOKafkaAdminClient, topic: str) -> str:
    responses = await admin.describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, topic, configs={"cleanup.policy": None})]
    )
    for response in responses:
        for resource in response.resources:
            for entry in resource[4]:
                if entry[0] == "cleanup.policy":
                    return str(entry[1])
    return "unknown"
