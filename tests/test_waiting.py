"""The devkit's waiting helpers: a free port, a condition with a deadline, a process to stop."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys

import pytest

from sportrix_devkit.waiting import (
    WaitTimeout,
    free_port,
    listening,
    stop_process,
    wait_until,
    wait_until_async,
)


def answers_on_try(n: int, answer: object) -> tuple[list[int], object]:
    """A probe that returns ``None`` until its ``n``-th call, then ``answer``; and its calls."""
    calls: list[int] = []

    def probe() -> object:
        calls.append(len(calls) + 1)
        return answer if len(calls) >= n else None

    return calls, probe


def test_a_condition_met_returns_the_probes_first_truthy_value() -> None:
    calls, probe = answers_on_try(3, {"ready": True})
    assert wait_until(probe, "the answer", 30, interval=0.01) == {"ready": True}
    assert calls == [1, 2, 3]


def test_a_condition_never_met_times_out_naming_it_with_the_last_value_and_details() -> None:
    values = iter(range(1_000_000))
    with pytest.raises(WaitTimeout) as raised:
        wait_until(
            lambda: next(values) < 0, "the impossible", 0.2, interval=0.01, details=lambda: "tail"
        )
    message = str(raised.value)
    assert message.startswith("timed out after 0.2s waiting for the impossible (last: False)")
    assert message.endswith("\ntail")
    assert isinstance(raised.value, TimeoutError)


def test_an_expected_exception_is_retried_and_shown_if_it_is_the_last_thing_seen() -> None:
    def refused() -> bool:
        raise ConnectionRefusedError(111, "Connection refused")

    with pytest.raises(WaitTimeout, match=r"\(last error: ConnectionRefusedError\(111, "):
        wait_until(refused, "the server", 0.2, interval=0.01, retry_on=(OSError,))


def test_a_retried_exception_then_a_value() -> None:
    outcomes: list[object] = [OSError("not yet"), OSError("not yet"), "up"]

    def probe() -> object:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    assert wait_until(probe, "the server", 30, interval=0.01, retry_on=(OSError,)) == "up"


def test_any_other_exception_in_the_probe_ends_the_wait_at_once() -> None:
    calls: list[int] = []

    def exited() -> bool:
        calls.append(1)
        raise RuntimeError("the process exited with 3")

    with pytest.raises(RuntimeError, match="exited with 3"):
        wait_until(exited, "the process", 30, interval=0.01, retry_on=(OSError,))
    assert calls == [1]


def test_a_falsy_value_after_an_error_is_what_the_failure_shows() -> None:
    outcomes: list[object] = [OSError("down"), 0]

    def probe() -> object:
        outcome = outcomes.pop(0) if outcomes else 0
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    with pytest.raises(WaitTimeout, match=r"\(last: 0\)$"):
        wait_until(probe, "a count", 0.2, interval=0.01, retry_on=(OSError,))


async def test_the_async_form_awaits_a_coroutine_probe_and_accepts_a_plain_one() -> None:
    calls: list[int] = []

    async def probe() -> int | None:
        calls.append(1)
        return len(calls) if len(calls) >= 2 else None

    assert await wait_until_async(probe, "two tries", 30, interval=0.01) == 2
    plain_calls, plain = answers_on_try(2, "done")
    assert await wait_until_async(plain, "two tries", 30, interval=0.01) == "done"
    assert plain_calls == [1, 2]


async def test_the_async_form_fails_the_same_way() -> None:
    async def refused() -> bool:
        raise ConnectionResetError("reset")

    with pytest.raises(WaitTimeout) as raised:
        await wait_until_async(
            refused, "the stream", 0.2, interval=0.01, retry_on=(OSError,), details=lambda: "log"
        )
    assert str(raised.value) == (
        "timed out after 0.2s waiting for the stream "
        "(last error: ConnectionResetError('reset'))\nlog"
    )
    with pytest.raises(KeyError):
        await wait_until_async(lambda: {}["missing"], "a key", 30, retry_on=(OSError,))


def test_free_port_can_be_bound_and_listening_tells_a_listener_from_nothing() -> None:
    port = free_port()
    assert not listening(port)
    with socket.socket() as server:
        server.bind(("127.0.0.1", port))
        server.listen()
        assert listening(port)


def test_stop_process_ends_a_process_with_sigterm() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True
    )
    assert stop_process(proc, 30) == -signal.SIGTERM


def test_stop_process_kills_the_group_of_a_process_that_ignores_sigterm() -> None:
    ignores = (
        "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('ready', flush=True); time.sleep(60)"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", ignores], stdout=subprocess.PIPE, start_new_session=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"ready\n"  # its SIGTERM handler is in place
    assert stop_process(proc, 0.5) == -signal.SIGKILL
    proc.stdout.close()


def test_stop_process_leaves_the_sigterm_to_the_caller_when_told() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(0.3)"], start_new_session=True
    )
    assert stop_process(proc, 30, terminate=False) == 0  # not signalled: it ran to its end
