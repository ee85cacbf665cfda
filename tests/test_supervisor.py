"""The supervisor restarts failed components, reports Fatal, and logs a repeated error once."""

from __future__ import annotations

import asyncio
import logging

import pytest

from ingester.supervisor import Fatal, Supervisor
from tests.e2e.harness import wait_for


async def test_a_failing_component_is_restarted_and_logged_once(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("ingester.supervisor.Backoff.next_delay", lambda *_a, **_k: 0.0)
    runs = 0

    async def flaky() -> None:
        nonlocal runs
        runs += 1
        if runs < 4:
            raise ConnectionError("broker away")
        await asyncio.Event().wait()

    supervisor = Supervisor()
    with caplog.at_level(logging.ERROR, logger="ingester.supervisor"):
        supervisor.start("flaky", flaky)
        await wait_for(lambda: runs == 4, "three restarts", 5, interval=0.01)
    assert supervisor.dead() == []
    assert [r.getMessage() for r in caplog.records].count(
        "flaky failed (ConnectionError: broker away); restarting it"
    ) == 1
    await supervisor.stop()
    assert supervisor.dead() == []  # stopped components are no longer tracked


async def test_fatal_is_reported_and_the_component_is_not_restarted() -> None:
    async def broken() -> None:
        raise Fatal("INGESTER_CONFIG_TOPIC is not compacted")

    supervisor = Supervisor()
    supervisor.start("prepare", broken)
    fatal = await asyncio.wait_for(supervisor.fatal, 5)
    assert str(fatal) == "INGESTER_CONFIG_TOPIC is not compacted"
    assert supervisor.dead() == ["prepare"]


async def test_a_one_shot_step_that_finishes_is_not_dead() -> None:
    done = asyncio.Event()

    async def step() -> None:
        done.set()

    supervisor = Supervisor()
    supervisor.start("prepare", step, once=True)
    await asyncio.wait_for(done.wait(), 5)
    task = supervisor._tasks["prepare"]
    await asyncio.wait_for(asyncio.shield(task), 5)
    assert task.done()
    assert supervisor.dead() == []
