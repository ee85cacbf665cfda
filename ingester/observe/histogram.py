"""A Prometheus histogram that takes a batch of observations per call.

prometheus_client's ``Histogram.observe`` takes one value per call: a Python loop over the
buckets and a lock per value, ~1 µs. The Kafka sink observes two values per acknowledged
record, thousands of times a second, and always has them by the batch. :class:`BatchHistogram`
sorts a batch into its buckets with ``bisect`` (~0.15 µs per value) and is exported through
prometheus_client's collector interface with the same series: ``_bucket{le}`` (cumulative),
``_count`` and ``_sum``. It is fed from the event loop's thread only; a scrape on that
thread never sees a batch half added.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Sequence

from prometheus_client import CollectorRegistry
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

__all__ = ["BatchHistogram", "HistogramSeries"]

#: The ``le`` label of a bound, spelt as prometheus_client's own histograms spell it.
_le_label: Callable[[float], str] = floatToGoString


class HistogramSeries:
    """One label set's buckets (not cumulative, ``+Inf`` last) and sum."""

    __slots__ = ("_bounds", "counts", "total")

    def __init__(self, bounds: list[float]) -> None:
        self._bounds = bounds
        self.counts = [0] * len(bounds)
        self.total = 0.0

    def observe_many(self, values: Iterable[float]) -> None:
        """Add every value of ``values``; a value equal to a bound falls in that bucket."""
        bounds, counts = self._bounds, self.counts
        total = 0.0
        for value in values:
            counts[bisect_left(bounds, value)] += 1
            total += value
        self.total += total

    def observe_repeated(self, value: float, count: int) -> None:
        """Add ``value`` ``count`` times (a whole batch that spent the same time)."""
        self.counts[bisect_left(self._bounds, value)] += count
        self.total += value * count


class BatchHistogram(Collector):
    """A histogram family with label names ``labelnames``; register it once in ``registry``."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str] = (),
        *,
        buckets: Sequence[float],
        registry: CollectorRegistry,
    ) -> None:
        if list(buckets) != sorted(set(buckets)) or math.inf in buckets:
            raise ValueError("buckets must be finite, distinct and in increasing order")
        self._name = name
        self._documentation = documentation
        self._labelnames = tuple(labelnames)
        self._bounds = [*map(float, buckets), math.inf]
        self._le_labels = [_le_label(bound) for bound in self._bounds]
        self._series: dict[tuple[str, ...], HistogramSeries] = {}
        if not self._labelnames:
            self._series[()] = HistogramSeries(self._bounds)
        registry.register(self)

    @property
    def name(self) -> str:
        """The family name (series add ``_bucket``, ``_count``, ``_sum``)."""
        return self._name

    @property
    def labelnames(self) -> tuple[str, ...]:
        """The label names every series carries (``le`` aside)."""
        return self._labelnames

    def labels(self, **values: str) -> HistogramSeries:
        """The series of one label set (created, all zero, on first use)."""
        if set(values) != set(self._labelnames):
            raise ValueError(f"{self._name} takes the labels {self._labelnames}")
        key = tuple(values[name] for name in self._labelnames)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = HistogramSeries(self._bounds)
        return series

    def describe(self) -> Iterator[HistogramMetricFamily]:
        """The family without samples (lets the registry check names without collecting)."""
        yield HistogramMetricFamily(self._name, self._documentation, labels=self._labelnames)

    def collect(self) -> Iterator[HistogramMetricFamily]:
        """Every series, buckets cumulative as the exposition format wants them."""
        family = HistogramMetricFamily(self._name, self._documentation, labels=self._labelnames)
        for key, series in self._series.items():
            cumulative, running = [], 0
            for bound, count in zip(self._le_labels, series.counts, strict=True):
                running += count
                cumulative.append((bound, float(running)))
            family.add_metric(list(key), cumulative, series.total)
        yield family
