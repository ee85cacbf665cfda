"""Reconnect delays: exponential, fully jittered, capped, reset after a healthy spell."""

import random

from ingester.core.backoff import Backoff


def make() -> Backoff:
    return Backoff(base=1.0, cap=8.0, reset_after=60.0, rng=random.Random(1))


def test_delays_stay_within_the_doubling_ceiling_and_the_cap() -> None:
    backoff = make()
    ceilings = [1, 2, 4, 8, 8, 8]
    for ceiling in ceilings:
        delay = backoff.next_delay(now=0.0)
        assert 0.0 <= delay <= ceiling


def test_jitter_spreads_delays() -> None:
    delays = {
        Backoff(1.0, 8.0, 60.0, random.Random(seed), attempt=3).next_delay(0.0)
        for seed in range(20)
    }
    assert len(delays) == 20
    assert all(0 <= d <= 8 for d in delays)


def test_a_long_healthy_connection_resets_the_attempts() -> None:
    backoff = make()
    for _ in range(5):
        backoff.next_delay(now=0.0)
    backoff.connected(now=100.0)
    backoff.next_delay(now=100.0 + 61.0)
    assert backoff.attempt == 1


def test_a_short_lived_connection_keeps_backing_off() -> None:
    backoff = make()
    for _ in range(5):
        backoff.next_delay(now=0.0)
    backoff.connected(now=100.0)
    backoff.next_delay(now=101.0)
    assert backoff.attempt == 6


def test_floor_is_added_for_auth_failures() -> None:
    assert make().next_delay(now=0.0, floor=60.0) >= 60.0
