"""Waiting in tools and tests: a free port, a condition with a deadline, a process to stop.

:func:`wait_until` (blocking) and :func:`wait_until_async` (for a coroutine) call a probe
until it returns something truthy, and return that. Both share one deadline, one polling
rule and one failure: :class:`WaitTimeout`, whose message names what was awaited and shows
the last value or exception the probe gave. Nothing here is used by the daemon.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import signal
import socket
import subprocess
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypedDict, TypeVar, Unpack, cast

__all__ = [
    "WaitOptions",
    "WaitTimeout",
    "free_port",
    "listening",
    "stop_process",
    "wait_until",
    "wait_until_async",
]

T = TypeVar("T")


class WaitTimeout(TimeoutError):
    """A condition did not hold before its deadline (the message says which, and the last
    value or exception seen)."""


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (another process may take it before you bind
    it: whoever binds it must cope, as :class:`~sportrix_devkit.localkafka.LocalKafka` does)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def listening(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts TCP connections on ``host:port`` (one try, 1 s at most)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        return sock.connect_ex((host, port)) == 0


class WaitOptions(TypedDict, total=False):
    """How :func:`wait_until` and :func:`wait_until_async` poll and fail; all optional."""

    interval: float
    """Seconds between tries (default 0.1; never past the deadline)."""
    retry_on: tuple[type[Exception], ...]
    """Exceptions of the probe that mean "not yet" (default none: any exception propagates)."""
    details: Callable[[], str]
    """Called at the deadline for more to show in the failure (a log's tail, say)."""


@dataclass
class _Wait:
    """One wait's deadline, its last outcome and its failure: the logic both forms share."""

    what: str
    within: float
    interval: float = 0.1
    retry_on: tuple[type[Exception], ...] = ()
    details: Callable[[], str] | None = None
    last: object = field(default=None, init=False)
    last_error: Exception | None = field(default=None, init=False)
    end: float = field(init=False)

    def __post_init__(self) -> None:
        self.end = time.monotonic() + self.within

    def done(self, result: object, error: Exception | None) -> bool:
        """Keep one try's outcome; whether it is the awaited (truthy) value.

        An error of a ``retry_on`` type counts as "not yet"; any other is raised again.
        """
        if error is not None:
            if not isinstance(error, self.retry_on):
                raise error
            self.last_error = error
            return False
        self.last, self.last_error = result, None
        return bool(result)

    def pause(self) -> float:
        """Seconds to sleep before the next try; raises :class:`WaitTimeout` once it is late."""
        remaining = self.end - time.monotonic()
        if remaining <= 0:
            seen = (
                f"last error: {self.last_error!r}"
                if self.last_error is not None
                else f"last: {self.last!r}"
            )
            message = f"timed out after {self.within:g}s waiting for {self.what} ({seen})"
            if self.details is not None:
                message += f"\n{self.details()}"
            raise WaitTimeout(message)
        return min(self.interval, remaining)


def wait_until(
    probe: Callable[[], T | None], what: str, within: float = 30.0, **options: Unpack[WaitOptions]
) -> T:
    """Call ``probe()`` until it returns something truthy, and return that.

    An exception of a ``retry_on`` type counts as "not yet"; any other propagates at once
    (so a probe can stop the wait, e.g. when the process it waits on has exited). After
    ``within`` seconds raises :class:`WaitTimeout` naming ``what``, with the last value or
    exception seen and, when given, ``details()``. See :class:`WaitOptions`.
    """
    wait = _Wait(what, within, **options)
    while True:
        try:
            result, error = probe(), None
        except Exception as exc:
            result, error = None, exc
        if wait.done(result, error):
            return cast(T, result)
        time.sleep(wait.pause())


async def wait_until_async(
    probe: Callable[[], T | Awaitable[T | None] | None],
    what: str,
    within: float = 30.0,
    **options: Unpack[WaitOptions],
) -> T:
    """:func:`wait_until` for a coroutine: sleeps with ``asyncio.sleep``, and ``probe`` may
    also be a coroutine function (each try is awaited)."""
    wait = _Wait(what, within, **options)
    while True:
        try:
            result, error = probe(), None
            if inspect.isawaitable(result):
                result = await result
        except Exception as exc:
            result, error = None, exc
        if wait.done(result, error):
            return cast(T, result)
        await asyncio.sleep(wait.pause())


def stop_process(proc: subprocess.Popen[bytes], grace: float, *, terminate: bool = True) -> int:
    """Stop ``proc``, started with ``start_new_session=True``; return its exit code.

    SIGTERM to its process group (unless ``terminate`` is false: the caller sent it
    already), up to ``grace`` seconds to exit, then SIGKILL to the group.
    """
    if terminate and proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
    try:
        return proc.wait(grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        return proc.wait()
