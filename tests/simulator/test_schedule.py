"""The hub's schedule: matches change independently, not all on one tick."""

from __future__ import annotations

import asyncio
import time

import pytest

from sportrix_devkit.simulator import server
from sportrix_devkit.simulator.config import DEMO_KEY, ApiKey, SimulatorConfig
from sportrix_devkit.simulator.core import UPDATE, Hub
from sportrix_devkit.simulator.server import Simulator, play_delay

NOW = 1_800_000_000.0


def first_changes(seed: int) -> list[float]:
    """Loop times of every live match's first change, for 10 changes/s per match."""
    config = SimulatorConfig(matches={"soccer": 200, "cricket": 50}, update_rate=10.0, seed=seed)
    hub = Hub(config, wall_now=NOW, loop_now=0.0)
    return sorted(due for due, _ in hub._schedule)


def test_first_changes_spread_over_one_interval() -> None:
    dues = first_changes(seed=1)
    assert len(dues) > 150
    assert all(0.0 <= due < 0.1 for due in dues)
    # Spread over the whole interval: every tenth of it holds some first changes, none most.
    buckets = [0] * 10
    for due in dues:
        buckets[int(due / 0.01)] += 1
    assert min(buckets) > 0
    assert max(buckets) < len(dues) / 4


def test_schedule_is_reproducible_per_seed() -> None:
    assert first_changes(seed=3) == first_changes(seed=3)
    assert first_changes(seed=3) != first_changes(seed=4)


def test_run_due_steps_only_the_matches_due() -> None:
    config = SimulatorConfig(matches={"soccer": 40, "cricket": 10}, update_rate=10.0, seed=2)
    hub = Hub(config, wall_now=NOW, loop_now=0.0)
    due_by_half_interval = sum(due <= 0.05 for due, _ in hub._schedule)
    hub.run_due(NOW, 0.05, budget=10_000)
    # Each stepped match is rescheduled one interval (0.1 s) after its due time.
    stepped = [due for due, _ in hub._schedule if due > 0.1]
    assert 0 < due_by_half_interval < len(hub._schedule)
    assert len(stepped) == due_by_half_interval


def test_a_schedule_far_behind_skips_ahead_and_keeps_each_match_phase() -> None:
    config = SimulatorConfig(matches={"soccer": 100, "cricket": 0}, update_rate=10.0, seed=5)
    hub = Hub(config, wall_now=NOW, loop_now=0.0)
    phases = {match_id: due for due, match_id in hub._schedule}
    hub.run_due(NOW, 30.0, budget=10_000)  # play resumes 30 s late (a pause, a slow start)
    for due, match_id in hub._schedule:
        assert 29.0 <= due <= 30.1  # no burst of catch-up changes queued
        assert (due - phases[match_id]) % 0.1 == pytest.approx(0.0, abs=1e-6) or (
            due - phases[match_id]
        ) % 0.1 == pytest.approx(0.1, abs=1e-6)
    assert len({round(due, 6) for due, _ in hub._schedule}) > 50


def test_play_waits_for_a_congested_client_without_spinning() -> None:
    # Play paused by backpressure leaves changes due in the past; waiting for the slow
    # client must still sleep, or the simulator spins and takes the client's CPU.
    assert play_delay(congested=True, backlogged=True, due=10.0, now=100.0) > 0.0
    assert play_delay(congested=True, backlogged=True, due=None, now=100.0) > 0.0


def test_play_catches_up_at_once_and_otherwise_sleeps_until_the_next_change() -> None:
    assert play_delay(congested=False, backlogged=False, due=10.0, now=100.0) == 0.0
    assert play_delay(congested=False, backlogged=False, due=100.2, now=100.0) == (
        pytest.approx(0.2)
    )
    # Idle (every match over) or far from the next change: wake up at least twice a second.
    assert play_delay(congested=False, backlogged=False, due=None, now=100.0) == 0.5
    assert play_delay(congested=False, backlogged=False, due=200.0, now=100.0) == 0.5
    # A client with frames still queued is served again soon, before the next change.
    backlogged = play_delay(congested=False, backlogged=True, due=100.2, now=100.0)
    assert 0.0 < backlogged < 0.2


class _Stop(Exception):
    pass


async def test_the_play_loop_sleeps_while_a_client_is_far_behind(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    simulator = Simulator(
        SimulatorConfig(matches={"soccer": 20, "cricket": 0}, update_rate=10.0, seed=1)
    )
    loop_now = asyncio.get_running_loop().time()
    simulator._hub = Hub(simulator.config, wall_now=time.time(), loop_now=loop_now - 60.0)
    assert all(due < loop_now - 50.0 for due, _ in simulator.hub._schedule)  # all overdue
    slow = simulator.hub.open_session(ApiKey(DEMO_KEY))  # no socket: its outbox never drains
    slow.outbox = [(b"{}", UPDATE, None)] * (server._OUTBOX_HIGH + 1)
    simulator._backlogged.add(slow)
    delays: list[float] = []

    async def recorded_sleep(delay: float) -> None:
        delays.append(delay)
        if len(delays) == 5:
            raise _Stop

    monkeypatch.setattr(server.asyncio, "sleep", recorded_sleep)
    with pytest.raises(_Stop):
        await simulator._play()
    assert all(delay > 0.0 for delay in delays), delays  # waits, never spins
    assert len(slow.outbox) == server._OUTBOX_HIGH + 1  # and plays nothing meanwhile
