"""Keeps the daemon's long-running components alive: a failed one restarts with backoff."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from aiokafka.errors import KafkaConnectionError

from ingester.core.backoff import Backoff

__all__ = ["Fatal", "Supervisor"]

log = logging.getLogger(__name__)

_UNREACHABLE = (KafkaConnectionError,)


class Fatal(Exception):
    """An error no restart can fix: the daemon exits non-zero with this one line."""


class Supervisor:
    """Runs named components as tasks; restarts those that fail, re-raises :class:`Fatal`.

    A component that fails the same way again is logged once, not once per restart, so a
    broker that refuses the password gives one clear line rather than a flood.
    """

    def __init__(self) -> None:
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._finished: set[str] = set()
        self._last_error: dict[str, str] = {}
        self.fatal: asyncio.Future[Fatal] = asyncio.get_running_loop().create_future()

    def start(
        self, name: str, component: Callable[[], Awaitable[None]], once: bool = False
    ) -> None:
        """Run ``component()`` as ``name``, restarting it whenever it fails.

        With ``once``, a component that returns normally is done (a start-up step);
        otherwise returning counts as a failure and it is restarted too.
        """
        task = asyncio.create_task(self._keep(name, component, once), name=name)
        self._tasks[name] = task

    def dead(self) -> list[str]:
        """Names of components that stopped running without finishing their job."""
        return [
            name for name, task in self._tasks.items() if task.done() and name not in self._finished
        ]

    async def _keep(self, name: str, component: Callable[[], Awaitable[None]], once: bool) -> None:
        backoff = Backoff(base=1.0, cap=30.0, reset_after=60.0)
        while True:
            started = time.monotonic()
            backoff.connected(started)
            try:
                await component()
                if once:
                    self._finished.add(name)
                    return
                error = "returned"
            except Fatal as exc:
                if not self.fatal.done():
                    self.fatal.set_result(exc)
                return
            except _UNREACHABLE as exc:
                # Kafka not answering (or refusing the credentials) is not a bug: no traceback,
                # and the client library's own line names the cause.
                error = f"{type(exc).__name__}: {exc}"
                if self._last_error.get(name) != error:
                    log.warning("%s cannot reach Kafka yet (%s); retrying", name, error)
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
                if self._last_error.get(name) != error:
                    log.error("%s failed (%s); restarting it", name, error, exc_info=exc)
            self._last_error[name] = error
            await asyncio.sleep(backoff.next_delay(time.monotonic()))

    async def stop(self, *names: str) -> None:
        """Cancel the named components (all when none are named) and wait for them."""
        tasks = [self._tasks.pop(n) for n in (names or list(self._tasks)) if n in self._tasks]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
