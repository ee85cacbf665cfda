"""What ``/healthz``, ``/readyz`` and ``/status`` answer, gathered from the components.

Each component says for itself what keeps it from being ready and brings its own gauges up
to date; :class:`Health` only puts their answers together, so it knows none of them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ingester import __version__
from ingester.observe.metrics import Metrics

__all__ = ["Health"]


class Health:
    """Liveness, readiness and ``/status`` of the daemon, and the gauges behind them.

    ``liveness`` lists the components that stopped running; each of ``checks`` lists what
    keeps a part from being ready; each of ``gauges`` updates a part's gauges (each tick and
    before each scrape); ``sections`` are the fields of ``/status`` after the readiness, in
    order, each read when asked.
    """

    def __init__(
        self,
        metrics: Metrics,
        instance_id: str,
        liveness: Callable[[], list[str]],
        checks: Sequence[Callable[[], list[str]]],
        gauges: Sequence[Callable[[], None]],
        sections: Mapping[str, Callable[[], Any]],
    ) -> None:
        self._identity = {"instance_id": instance_id, "version": __version__}
        self._ready = metrics.ready
        self.liveness = liveness
        self._checks = checks
        self._gauges = gauges
        self._sections = sections

    def readiness(self) -> list[str]:
        """What keeps the daemon from being ready (empty when it is)."""
        return [problem for check in self._checks for problem in check()]

    def refresh(self) -> None:
        """Bring every gauge, the readiness one included, up to date."""
        for update in self._gauges:
            update()
        self._ready.set(0 if self.readiness() else 1)

    def status(self) -> dict[str, Any]:
        """The JSON document of ``/status``."""
        problems = self.readiness()
        document: dict[str, Any] = {**self._identity, "ready": not problems, "problems": problems}
        for name, read in self._sections.items():
            document[name] = read()
        return document
