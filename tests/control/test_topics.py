"""Start-up topic checks on the real broker: create what is missing, insist on compaction."""

from __future__ import annotations

import pytest

from ingester.control.topics import TopicError, ensure_topics
from ingester.settings import Settings, load_settings


def _settings(bootstrap: str, stem: str, **overrides: str) -> Settings:
    names = {"topic": f"{stem}-data", "config_topic": f"{stem}-config", "dlq_topic": f"{stem}-dlq"}
    return load_settings(kafka_bootstrap_servers=bootstrap, **{**names, **overrides})


async def test_topics_created_a_moment_ago_are_checked_at_once(kafka, topic_factory):
    # The broker may not describe a topic just created: that is a wait, not "not compacted".
    for _ in range(10):
        await ensure_topics(_settings(kafka.bootstrap_servers, topic_factory.name()))


async def test_a_config_topic_with_the_delete_policy_is_refused(kafka, topic_factory):
    config_topic = await topic_factory(config={"cleanup.policy": "delete"})
    settings = _settings(kafka.bootstrap_servers, topic_factory.name(), config_topic=config_topic)
    with pytest.raises(TopicError, match=r"cleanup.policy=delete; it must be compacted"):
        await ensure_topics(settings)
