"""Prometheus metrics of the daemon, one registry per :class:`Metrics` instance.

Names are in base units and carry no per-match label (cardinality). The dashboard, the
alert rules and ``docs/runbook.md`` refer to these names; a test checks they agree.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge

from ingester import __version__
from ingester.observe.histogram import BatchHistogram

__all__ = ["ERROR_CODES", "LATENCY_BUCKETS", "METRIC_NAMES", "Metrics"]

#: Seconds; resolves single milliseconds up to minutes.
LATENCY_BUCKETS: tuple[float, ...] = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
)  # fmt: skip

_PREFIX = "sportrix_ingester_"

#: The upstream's error codes (``sportrix-protocol.md``); any other code counts as ``other``.
ERROR_CODES = (
    "sport_not_enabled",
    "match_not_found",
    "subscription_limit",
    "invalid_message",
    "rate_limited",
)


class Metrics:
    """Every metric the daemon exports, registered in :attr:`registry`."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        p = _PREFIX
        self.upstream_connections = Gauge(
            p + "upstream_connections", "Upstream connections by state.", ["state"], registry=r
        )
        self.upstream_reconnects = Counter(
            p + "upstream_reconnects", "Upstream reconnects by reason.", ["reason"], registry=r
        )
        self.frames = Counter(
            p + "frames", "Upstream frames received, by sport and op.", ["sport", "op"], registry=r
        )
        self.error_frames = Counter(
            p + "error_frames", "Upstream error frames by code.", ["code"], registry=r
        )
        self.unanswered_subscribes = Counter(
            p + "unanswered_subscribes",
            "Subscribes with no snapshot and no error after INGESTER_SUBSCRIBE_TIMEOUT.",
            registry=r,
        )
        self.subscriptions = Gauge(
            p + "subscriptions", "Followed matches by subscription state.", ["state"], registry=r
        )
        self.records_produced = Counter(
            p + "records_produced",
            "Records acknowledged by Kafka, by sport.",
            ["sport"],
            registry=r,
        )
        self.produce_errors = Counter(
            p + "produce_errors", "Failed produce attempts, by error.", ["error"], registry=r
        )
        self.records_dropped = Counter(
            p + "records_dropped",
            "Records Kafka refused for good (too large alone, corrupt), by error; not retried.",
            ["error"],
            registry=r,
        )
        self.dlq_records = Counter(
            p + "dlq_records",
            "Frames sent to the dead-letter topic, by stage.",
            ["stage"],
            registry=r,
        )
        # Observed a batch at a time by the sink (see ingester.observe.histogram).
        self.lag = BatchHistogram(
            p + "lag_seconds",
            "Kafka acknowledgement time minus the frame's updated_at.",
            ["sport"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.produce_latency = BatchHistogram(
            p + "produce_latency_seconds",
            "Kafka acknowledgement time minus the frame's receive time.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.buffered_records = Gauge(
            p + "buffered_records", "Records received and not yet acknowledged.", registry=r
        )
        self.buffer_capacity = Gauge(
            p + "buffer_capacity_records", "Capacity of the record buffer.", registry=r
        )
        self.upstream_paused = Gauge(
            p + "upstream_paused",
            "1 while reading from the upstream is paused because the buffer is full.",
            registry=r,
        )
        self.seq_gaps = Counter(
            p + "seq_gaps", "Sequence gaps detected, by sport.", ["sport"], registry=r
        )
        self.out_of_order = Counter(
            p + "out_of_order_frames",
            "Update frames whose seq is not above the last produced one, by sport.",
            ["sport"],
            registry=r,
        )
        self.skipped_frames = Counter(
            p + "skipped_frames",
            "Frames skipped by reason (unknown_op, not_followed).",
            ["reason"],
            registry=r,
        )
        self.last_frame_age = Gauge(
            p + "last_frame_age_seconds",
            'Age of the oldest "last frame" among active matches.',
            registry=r,
        )
        self.config_commands = Counter(
            p + "config_commands", "Config-topic commands, by result.", ["result"], registry=r
        )
        self.config_rejections = Counter(
            p + "config_rejections",
            "Rejected config-topic commands, by reason.",
            ["reason"],
            registry=r,
        )
        self.config_reasserts = Counter(
            p + "config_reasserts",
            "Config commands written again so that compaction keeps them over a record on top.",
            registry=r,
        )
        self.config_lag = Gauge(
            p + "config_lag_records", "Config-topic records not yet applied.", registry=r
        )
        self.capacity_refusals = Counter(
            p + "capacity_refusals",
            "Matches refused because the instance follows INGESTER_MAX_MATCHES already.",
            registry=r,
        )
        self.retired_matches = Counter(
            p + "retired_matches", "Finished matches removed from the config topic.", registry=r
        )
        self.producer_rebuilds = Counter(
            p + "producer_rebuilds", "Kafka producers rebuilt after a fatal error.", registry=r
        )
        self.owned_partitions = Gauge(
            p + "owned_config_partitions", "Config-topic partitions assigned here.", registry=r
        )
        self.ready = Gauge(p + "ready", "1 when /readyz answers 200.", registry=r)
        self.build_info = Gauge(
            p + "build_info",
            "Always 1; the version label names the build.",
            ["version"],
            registry=r,
        )
        self.build_info.labels(version=__version__).set(1)
        self._prime()

    def _prime(self) -> None:
        """Create the known label values so every series exists from the first scrape."""
        for state in ("connected", "connecting", "backoff"):
            self.upstream_connections.labels(state=state)
        for reason in (
            "closed",
            "timeout",
            "unanswered",
            "message_too_big",
            "error",
            "auth_failed",
            "handshake_failed",
        ):
            self.upstream_reconnects.labels(reason=reason)
        for state in ("pending", "active", "refused"):
            self.subscriptions.labels(state=state)
        for stage in ("decode", "validate", "convert", "encode"):
            self.dlq_records.labels(stage=stage)
        for result in ("applied", "ignored", "rejected"):
            self.config_commands.labels(result=result)
        for code in (*ERROR_CODES, "other"):
            self.error_frames.labels(code=code)

    def prime_sports(self, sports: Iterable[str]) -> None:
        """Create the per-sport series of every sport the daemon has a schema for."""
        for sport in sports:
            for op in ("snapshot", "update"):
                self.frames.labels(sport=sport, op=op)
            self.records_produced.labels(sport=sport)
            self.lag.labels(sport=sport)
            self.seq_gaps.labels(sport=sport)
            self.out_of_order.labels(sport=sport)


#: Every family name exported (as it appears in the exposition, counters with ``_total``).
METRIC_NAMES: frozenset[str] = frozenset(
    (m.name + "_total" if m.type == "counter" else m.name) for m in Metrics().registry.collect()
)
