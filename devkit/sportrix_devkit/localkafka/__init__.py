"""A real local Apache Kafka broker for tests and the demo, fetched with Maven; no Docker.

See ``docs/local-kafka.md``. The Python API is :class:`LocalKafka`; the command line is
``sportrix-ingester kafka fetch|start|stop|status``.
"""

from sportrix_devkit.localkafka.broker import (
    BrokerState,
    LocalKafka,
    can_produce,
    running_broker,
    stop_running_broker,
)
from sportrix_devkit.localkafka.fetch import KAFKA_VERSION, LocalKafkaError, cache_dir, classpath

__all__ = [
    "KAFKA_VERSION",
    "BrokerState",
    "LocalKafka",
    "LocalKafkaError",
    "cache_dir",
    "can_produce",
    "classpath",
    "running_broker",
    "stop_running_broker",
]
