"""BatchHistogram exports what prometheus_client's Histogram would for the same values."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from ingester.observe.histogram import BatchHistogram
from ingester.observe.metrics import LATENCY_BUCKETS

values = st.one_of(
    st.sampled_from([0.0, *LATENCY_BUCKETS, 1e9]),  # bounds fall in their own bucket
    st.floats(min_value=0.0, max_value=1e6, allow_nan=False),
)


def _exposition(registry: CollectorRegistry) -> dict[str, float | str]:
    """Sample → value, with the HELP and TYPE lines."""
    samples: dict[str, float | str] = {}
    for line in generate_latest(registry).decode().splitlines():
        if "_created" in line:  # prometheus_client's own series; not exported by ours
            continue
        name, _, value = line.rpartition(" ")
        if line.startswith("#"):
            samples[line] = ""
        else:
            samples[name] = float(value)
    return samples


@given(batches=st.lists(st.lists(values, max_size=30), max_size=6))
def test_same_exposition_as_prometheus_client(batches: list[list[float]]) -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    batch = BatchHistogram("x_seconds", "Doc.", ["sport"], buckets=LATENCY_BUCKETS, registry=ours)
    single = Histogram("x_seconds", "Doc.", ["sport"], buckets=LATENCY_BUCKETS, registry=theirs)
    for sport in ("soccer", "cricket"):
        batch.labels(sport=sport)
        single.labels(sport=sport)
    for values_ in batches:
        batch.labels(sport="soccer").observe_many(values_)
        batch.labels(sport="cricket").observe_many(reversed(values_))
        for value in values_:
            single.labels(sport="soccer").observe(value)
            single.labels(sport="cricket").observe(value)
    ours_, theirs_ = _exposition(ours), _exposition(theirs)
    assert ours_.keys() == theirs_.keys()
    for sample, value in theirs_.items():  # sums: the order of the additions differs
        assert ours_[sample] == (pytest.approx(value) if "_sum" in sample else value), sample


def test_unlabelled_family_exists_from_the_start() -> None:
    registry = CollectorRegistry()
    histogram = BatchHistogram("y_seconds", "Doc.", buckets=(0.1, 1.0), registry=registry)
    assert registry.get_sample_value("y_seconds_count") == 0
    histogram.labels().observe_many([0.1, 0.5, 7.0])
    assert registry.get_sample_value("y_seconds_bucket", {"le": "0.1"}) == 1
    assert registry.get_sample_value("y_seconds_bucket", {"le": "1.0"}) == 2
    assert registry.get_sample_value("y_seconds_count") == 3
    assert registry.get_sample_value("y_seconds_sum") == pytest.approx(7.6)


def test_wrong_labels_and_unsorted_buckets_are_refused() -> None:
    registry = CollectorRegistry()
    histogram = BatchHistogram("z", "Doc.", ["sport"], buckets=(1.0,), registry=registry)
    with pytest.raises(ValueError, match="takes the labels"):
        histogram.labels(op="update")
    with pytest.raises(ValueError, match="increasing"):
        BatchHistogram("w", "Doc.", buckets=(1.0, 0.5), registry=registry)
