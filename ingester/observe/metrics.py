"""Prometheus metrics of the daemon, one registry per :class:`Metrics` instance.

Names are in base units and carry no per-match label (cardinality). The dashboard, the
alert rules and ``docs/runbook.md`` refer to these names; a test checks they agree.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge

from ingester import __version__
from ingester.observe.histogram import BatchHistogram

__all__ = [
    "ERROR_CODES",
    "LATENCY_BUCKETS",
    "METRIC_NAMES",
    "PRODUCE_STAGES",
    "SPOOL_DAMAGE_KINDS",
    "SPOOL_WRITE_ERRORS",
    "STAGE_BUCKETS",
    "Metrics",
]

#: Seconds; resolves single milliseconds up to minutes.
LATENCY_BUCKETS: tuple[float, ...] = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
)  # fmt: skip

#: Seconds; the produce stages take fractions of a millisecond to tens of them.
STAGE_BUCKETS: tuple[float, ...] = (
    0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0015, 0.002, 0.003, 0.004, 0.005, 0.0075,
    0.01, 0.015, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip

#: The steps of a record between the socket and Kafka's acknowledgement, in order (the
#: ``stage`` label of ``produce_stage_seconds``).
PRODUCE_STAGES = ("processed", "queued", "batched", "acknowledged")

#: The ``kind`` label of ``spool_damage`` (``ingester.produce.spool.log.Damage.kind``).
SPOOL_DAMAGE_KINDS = ("torn_record", "corrupt_segment")

#: The ``error`` label values of ``spool_write_errors`` created up front: ``full`` (the spool
#: at ``INGESTER_SPOOL_MAX_BYTES``) and the usual errno names of a failed write; any other
#: errno name appears when it first happens.
SPOOL_WRITE_ERRORS = ("full", "ENOSPC", "EFBIG", "EIO", "EDQUOT")

_PREFIX = "sportrix_ingester_"

#: The upstream's error codes (``sportrix-protocol.md``); any other code counts as ``other``.
ERROR_CODES = (
    "sport_not_enabled",
    "match_not_found",
    "subscription_limit",
    "invalid_message",
    "rate_limited",
)


#: Each family (its name after the prefix) and its help text, the ``# HELP`` line of
#: ``/metrics``.
_HELP = {
    "upstream_connections": "Upstream connections by state.",
    "upstream_reconnects": "Upstream reconnects by reason.",
    "frames": "Upstream frames received, by sport and op.",
    "error_frames": "Upstream error frames by code.",
    "unanswered_subscribes": (
        "Subscribes with no snapshot and no error after INGESTER_SUBSCRIBE_TIMEOUT."
    ),
    "subscriptions": "Followed matches by subscription state.",
    "records_produced": "Records acknowledged by Kafka, by sport.",
    "produce_errors": "Failed produce attempts, by error.",
    "records_dropped": (
        "Records Kafka refused for good (too large alone, corrupt), by error; not retried."
    ),
    "dlq_records": "Frames sent to the dead-letter topic, by stage.",
    "lag_seconds": "Kafka acknowledgement time minus the frame's updated_at.",
    "produce_latency_seconds": "Kafka acknowledgement time minus the frame's receive time.",
    "produce_stage_seconds": (
        "Time a record spent in each step from its frame's receipt to Kafka's acknowledgement."
    ),
    "buffered_records": "Records in memory, received and not yet acknowledged (spool apart).",
    "buffer_capacity_records": "Capacity of the record buffer.",
    "upstream_paused": (
        "1 while reading from the upstream is paused because the buffer (and spool) is full."
    ),
    "upstream_pauses": (
        "Times reading from the upstream paused because the buffer and spool were full."
    ),
    "spool_bytes": "Bytes the disk spool holds (framing included).",
    "spool_capacity_bytes": "INGESTER_SPOOL_MAX_BYTES; 0 without a spool.",
    "spool_records": "Records held in the disk spool, not yet acknowledged by Kafka.",
    "spool_oldest_record_age_seconds": "Age of the oldest record in the disk spool; 0 when empty.",
    "spool_records_written": "Records written to the disk spool.",
    "spool_records_read": "Records read back from the disk spool to be produced.",
    "spool_write_errors": (
        "Spool writes refused, by error (full, or the errno name); reading pauses meanwhile."
    ),
    "spool_damage": "Damaged parts of the spool found and skipped, by kind.",
    "spool_damaged_records": "Spooled records known lost to damage.",
    "replayed_records": (
        "Records produced from the spool with the replayed header (a match not followed here)."
    ),
    "seq_gaps": "Sequence gaps detected, by sport.",
    "out_of_order_frames": "Update frames whose seq is not above the last produced one, by sport.",
    "skipped_frames": "Frames skipped by reason (unknown_op, not_followed).",
    "last_frame_age_seconds": 'Age of the oldest "last frame" among active matches.',
    "config_commands": "Config-topic commands, by result.",
    "config_rejections": "Rejected config-topic commands, by reason.",
    "config_reasserts": (
        "Config commands written again so that compaction keeps them over a record on top."
    ),
    "config_lag_records": "Config-topic records not yet applied.",
    "capacity_refusals": (
        "Matches refused because the instance follows INGESTER_MAX_MATCHES already."
    ),
    "retired_matches": "Finished matches removed from the config topic.",
    "producer_rebuilds": "Kafka producers rebuilt after a fatal error.",
    "owned_config_partitions": "Config-topic partitions assigned here.",
    "ready": "1 when /readyz answers 200.",
    "build_info": "Always 1; the version label names the build.",
}


#: The label names of each family that has any.
_LABELS: dict[str, tuple[str, ...]] = {
    "upstream_connections": ("state",),
    "upstream_reconnects": ("reason",),
    "frames": ("sport", "op"),
    "error_frames": ("code",),
    "subscriptions": ("state",),
    "records_produced": ("sport",),
    "produce_errors": ("error",),
    "records_dropped": ("error",),
    "dlq_records": ("stage",),
    "lag_seconds": ("sport",),
    "produce_stage_seconds": ("stage",),
    "seq_gaps": ("sport",),
    "out_of_order_frames": ("sport",),
    "skipped_frames": ("reason",),
    "config_commands": ("result",),
    "config_rejections": ("reason",),
    "spool_write_errors": ("error",),
    "spool_damage": ("kind",),
    "build_info": ("version",),
}


class Metrics:
    """Every metric the daemon exports, registered in :attr:`registry`."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        counter, gauge, histogram = self._counter, self._gauge, self._histogram
        self.upstream_connections = gauge("upstream_connections")
        self.upstream_reconnects = counter("upstream_reconnects")
        self.frames = counter("frames")
        self.error_frames = counter("error_frames")
        self.unanswered_subscribes = counter("unanswered_subscribes")
        self.subscriptions = gauge("subscriptions")
        self.records_produced = counter("records_produced")
        self.produce_errors = counter("produce_errors")
        self.records_dropped = counter("records_dropped")
        self.dlq_records = counter("dlq_records")
        # Observed a batch at a time by the sink (see ingester.observe.histogram).
        self.lag = histogram("lag_seconds")
        self.produce_latency = histogram("produce_latency_seconds")
        self.produce_stages = histogram("produce_stage_seconds", STAGE_BUCKETS)
        self.buffered_records = gauge("buffered_records")
        self.buffer_capacity = gauge("buffer_capacity_records")
        self.upstream_paused = gauge("upstream_paused")
        self.upstream_pauses = counter("upstream_pauses")
        self.spool_bytes = gauge("spool_bytes")
        self.spool_capacity_bytes = gauge("spool_capacity_bytes")
        self.spool_records = gauge("spool_records")
        self.spool_oldest_record_age_seconds = gauge("spool_oldest_record_age_seconds")
        self.spool_records_written = counter("spool_records_written")
        self.spool_records_read = counter("spool_records_read")
        self.spool_write_errors = counter("spool_write_errors")
        self.spool_damage = counter("spool_damage")
        self.spool_damaged_records = counter("spool_damaged_records")
        self.replayed_records = counter("replayed_records")
        self.seq_gaps = counter("seq_gaps")
        self.out_of_order = counter("out_of_order_frames")
        self.skipped_frames = counter("skipped_frames")
        self.last_frame_age = gauge("last_frame_age_seconds")
        self.config_commands = counter("config_commands")
        self.config_rejections = counter("config_rejections")
        self.config_reasserts = counter("config_reasserts")
        self.config_lag = gauge("config_lag_records")
        self.capacity_refusals = counter("capacity_refusals")
        self.retired_matches = counter("retired_matches")
        self.producer_rebuilds = counter("producer_rebuilds")
        self.owned_partitions = gauge("owned_config_partitions")
        self.ready = gauge("ready")
        self.build_info = gauge("build_info")
        self.build_info.labels(version=__version__).set(1)
        self._prime()

    def _counter(self, name: str) -> Counter:
        return Counter(_PREFIX + name, _HELP[name], _LABELS.get(name, ()), registry=self.registry)

    def _gauge(self, name: str) -> Gauge:
        return Gauge(_PREFIX + name, _HELP[name], _LABELS.get(name, ()), registry=self.registry)

    def _histogram(self, name: str, buckets: tuple[float, ...] = LATENCY_BUCKETS) -> BatchHistogram:
        labels = _LABELS.get(name, ())
        return BatchHistogram(
            _PREFIX + name, _HELP[name], labels, buckets=buckets, registry=self.registry
        )

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
        for stage in PRODUCE_STAGES:
            self.produce_stages.labels(stage=stage)
        for kind in SPOOL_DAMAGE_KINDS:
            self.spool_damage.labels(kind=kind)
        for error in SPOOL_WRITE_ERRORS:
            self.spool_write_errors.labels(error=error)

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
