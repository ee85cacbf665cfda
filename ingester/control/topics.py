"""Topic checks at start-up: create what is missing, refuse a config topic not compacted."""

from __future__ import annotations

import asyncio
import logging
import time

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import TopicAlreadyExistsError, for_code

from ingester.produce.kafka_client import client_kwargs
from ingester.settings import Settings

__all__ = ["TopicError", "ensure_topics"]

log = logging.getLogger(__name__)

#: Seconds to wait for a topic created a moment ago to be described by the broker.
_DESCRIBE_WAIT = 10.0


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
    """The config topic's ``cleanup.policy``; raise :class:`TopicError` if it cannot be read.

    A topic created a moment ago may not be described yet (the broker answers
    UNKNOWN_TOPIC_OR_PARTITION until the controller's metadata reaches it): ask again for
    up to :data:`_DESCRIBE_WAIT` seconds before giving up.
    """
    deadline = time.monotonic() + _DESCRIBE_WAIT
    while True:
        policy, problem = await _describe_policy(admin, topic)
        if policy is not None:
            return policy
        if time.monotonic() >= deadline:
            raise TopicError(
                f"INGESTER_CONFIG_TOPIC {topic}: the broker does not describe its "
                f"cleanup.policy ({problem})"
            )
        await asyncio.sleep(0.2)


async def _describe_policy(admin: AIOKafkaAdminClient, topic: str) -> tuple[str | None, str]:
    """``(policy, "")``, or ``(None, why not)`` when the broker did not describe it."""
    responses = await admin.describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, topic, configs={"cleanup.policy": None})]
    )
    problem = "not in the broker's answer"
    for response in responses:
        for error_code, error_message, _, _, entries in response.resources:
            if error_code:
                problem = f"{for_code(error_code).__name__}: {error_message or ''}".rstrip(": ")
                continue
            for entry in entries:
                if entry[0] == "cleanup.policy":
                    return str(entry[1]), ""
    return None, problem
