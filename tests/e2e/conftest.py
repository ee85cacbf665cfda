"""Fixtures of the end-to-end tests: unique topics, the broker address, topic readers."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.conftest import TopicFactory
from tests.e2e.harness import TopicReader, Topics
from tests.e2e.tls import Pki


@pytest.fixture
def topics(topic_factory: TopicFactory) -> Topics:
    """Fresh data, config and dead-letter topic names (the daemon creates them)."""
    return Topics(topic_factory.name(), topic_factory.name(), topic_factory.name())


@pytest.fixture
def bootstrap(kafka: object) -> str:
    """The session broker's PLAINTEXT address."""
    return str(kafka.bootstrap_servers)  # type: ignore[attr-defined]


@pytest.fixture
async def data_reader(bootstrap: str, topics: Topics) -> AsyncIterator[TopicReader]:
    """Reads the data topic from the beginning, decoding every record."""
    reader = TopicReader(bootstrap, topics.data)
    yield reader
    await reader.close()


@pytest.fixture
async def dlq_reader(bootstrap: str, topics: Topics) -> AsyncIterator[TopicReader]:
    """Reads the dead-letter topic from the beginning (raw values)."""
    reader = TopicReader(bootstrap, topics.dlq, decode=False)
    yield reader
    await reader.close()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A CA made for this module, an unrelated CA, and the certificates the TLS tests use."""
    return Pki.make(tmp_path_factory.mktemp("pki"))
