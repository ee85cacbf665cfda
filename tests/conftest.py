"""Shared fixtures: one real Kafka broker for the whole session, and unique topics per test.

* ``kafka`` (session): the broker. A :class:`~sportrix_devkit.localkafka.LocalKafka` with the
  SASL_SSL listener enabled, started on first use; or, when ``KAFKA_BOOTSTRAP_SERVERS`` is set, an
  :class:`ExternalKafka` for that broker (no local broker is started). Either way
  ``kafka.bootstrap_servers`` is the PLAINTEXT address.
* ``local_kafka`` (function): the same broker, for tests that must control it (``stop()``,
  ``start_again()``, ``restart()``) or use the secured listener; fails when the broker is
  external. If a test leaves it stopped, it is started again after the test.
* ``topic_factory`` (function): ``topic_factory.name()`` gives a unique topic name;
  ``await topic_factory(partitions=3, config={"cleanup.policy": "compact"})`` also creates it.
* ``unique_topic`` (function): one unique topic name, not created (the broker auto-creates
  topics with one partition on first use).

The suite runs in parallel (``scripts/check``: pytest-xdist, ``--dist loadgroup``). Each worker
is a process of its own with its own session, so it starts its own broker on free ports in its
own temporary folder (``tmp_path_factory`` is per worker), and a test that stops or restarts
``local_kafka`` only affects the tests of its worker, which run one at a time. Topic names are
unique per test, so workers also share an external broker safely. Tests that must not run at
the same time as each other take ``@pytest.mark.xdist_group("NAME")``: one worker runs them all;
so do the tests of a module whose module-scoped fixture is costly (an image build, a venv),
which would otherwise be made once on every worker that runs one of them.

The ``slow`` tests are collected first. Workers take tests in collection order (groups of
several tests before single tests), so the long waits start at once and overlap, and the many
short tests fill in behind them instead of one worker ending the run alone on a long test.

Tests that use any of these are marked ``kafka`` automatically (``pytest -m "not kafka"`` runs
the rest). When no broker can be had, those tests fail with the reason; they never skip.
Pure unit tests request none of them and never start the broker.
"""

from __future__ import annotations

import itertools
import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from sportrix_devkit.localkafka import LocalKafka, LocalKafkaError, can_produce

KAFKA_FIXTURES = frozenset({"kafka", "local_kafka", "topic_factory", "unique_topic"})
UNGROUPED = pytest.StashKey[str]()


@pytest.hookimpl(wrapper=True)
def pytest_collection_modifyitems(
    config: pytest.Config, items: list[pytest.Item]
) -> Iterator[None]:
    """Mark every test that uses a Kafka fixture with ``kafka`` (before ``-m`` selects), and
    once every conftest has marked its tests, move the ``slow`` ones to the front. On an xdist
    worker under ``--dist loadgroup``, a grouped test whose node id lacks its ``@group`` suffix
    fails (:func:`pytest_runtest_setup`): pytest-xdist would silently spread its group."""
    for item in items:
        if KAFKA_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.kafka)
    yield
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
    if getattr(config.option, "loadgroup", False):
        for item in items:
            if item.get_closest_marker("xdist_group") and "@" not in item.nodeid:
                item.stash[UNGROUPED] = (
                    "pytest-xdist did not put this test in its xdist_group: this pytest and "
                    "pytest-xdist do not work together (docs/dependencies.md)"
                )


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Fail a test that lost its ``xdist_group`` (see :func:`pytest_collection_modifyitems`)."""
    if UNGROUPED in item.stash:
        pytest.fail(item.stash[UNGROUPED], pytrace=False)


@dataclass(frozen=True)
class ExternalKafka:
    """A broker given by ``KAFKA_BOOTSTRAP_SERVERS`` (PLAINTEXT, not controlled by the tests)."""

    bootstrap_servers: str


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka | ExternalKafka]:
    """The session's Kafka broker (see the module docstring)."""
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        if not can_produce({"bootstrap_servers": external}):
            pytest.fail(
                f"KAFKA_BOOTSTRAP_SERVERS={external} does not take a record; start that broker "
                "or unset the variable to let the tests start a local one",
                pytrace=False,
            )
        yield ExternalKafka(external)
        return
    broker = LocalKafka(tmp_path_factory.mktemp("kafka"), secure=True)
    try:
        broker.start()
    except LocalKafkaError as exc:
        reason = str(exc)
    else:
        reason = ""
    if reason:
        pytest.fail(
            f"no Kafka broker for the tests: {reason}\n"
            "Fix the cause (`make test` fetches the jars; see docs/local-kafka.md) or point "
            "KAFKA_BOOTSTRAP_SERVERS at a running broker.",
            pytrace=False,
        )
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def local_kafka(kafka: LocalKafka | ExternalKafka) -> Iterator[LocalKafka]:
    """The session's broker when it is local and may be stopped, restarted or used securely."""
    if not isinstance(kafka, LocalKafka):
        pytest.fail(
            "this test controls the local broker (restart or the SASL_SSL listener); "
            "unset KAFKA_BOOTSTRAP_SERVERS to run it",
            pytrace=False,
        )
    yield kafka
    if not kafka.running:
        kafka.start_again()


class TopicFactory:
    """Unique topic names for one test, optionally created with partitions and configs."""

    def __init__(self, bootstrap_servers: str, test_name: str) -> None:
        self.bootstrap_servers = bootstrap_servers
        self._prefix = "t-" + re.sub(r"[^A-Za-z0-9._-]+", "-", test_name)[:80].strip("-")
        self._counter = itertools.count()

    def name(self) -> str:
        """A topic name no other test uses (not created)."""
        return f"{self._prefix}-{next(self._counter)}-{uuid.uuid4().hex[:8]}"

    async def __call__(self, partitions: int = 1, config: dict[str, str] | None = None) -> str:
        """Create a topic with ``partitions`` and topic ``config``; return its name."""
        topic = self.name()
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap_servers)
        await admin.start()
        try:
            response = await admin.create_topics(
                [NewTopic(topic, partitions, 1, topic_configs=config or {})]
            )
        finally:
            await admin.close()
        for error in response.to_object()["topic_errors"]:
            if error["error_code"] != 0:
                raise AssertionError(f"could not create topic {topic}: {error}")
        return topic


@pytest.fixture
def topic_factory(
    kafka: LocalKafka | ExternalKafka, request: pytest.FixtureRequest
) -> TopicFactory:
    """Unique topic names for this test (see :class:`TopicFactory`)."""
    return TopicFactory(kafka.bootstrap_servers, request.node.name)


@pytest.fixture
def unique_topic(topic_factory: TopicFactory) -> str:
    """A unique topic name, not created (auto-created with one partition on first use)."""
    return topic_factory.name()
