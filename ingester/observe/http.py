"""The operations HTTP server: ``/metrics``, ``/healthz``, ``/readyz``, ``/status``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ingester.observe.health import Health
from ingester.observe.metrics import Metrics

__all__ = ["OpsServer"]


class OpsServer:
    """Serves the daemon's :class:`Health` and metrics.

    ``health`` is asked per request (its gauges refreshed first), and every answer goes out
    through ``scrub`` (the logs' secret scrubber): a problem quoting an error message never
    shows a secret.
    """

    def __init__(self, metrics: Metrics, health: Health, scrub: Callable[[str], str]) -> None:
        self._metrics = metrics
        self._health = health
        self._scrub = scrub
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    def _app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/metrics", self._get_metrics)
        app.router.add_get("/healthz", self._get_healthz)
        app.router.add_get("/readyz", self._get_readyz)
        app.router.add_get("/status", self._get_status)
        return app

    async def start(self, host: str, port: int) -> None:
        """Listen on ``host``:``port`` (0 picks a free port, see :attr:`port`)."""
        self._runner = web.AppRunner(self._app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else port

    async def stop(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()

    async def _get_metrics(self, _: web.Request) -> web.Response:
        self._health.refresh()
        body = generate_latest(self._metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _get_healthz(self, _: web.Request) -> web.Response:
        return self._verdict(self._health.liveness(), "alive")

    async def _get_readyz(self, _: web.Request) -> web.Response:
        self._health.refresh()
        return self._verdict(self._health.readiness(), "ready")

    async def _get_status(self, _: web.Request) -> web.Response:
        self._health.refresh()
        return self._json(self._health.status())

    def _verdict(self, problems: list[str], word: str) -> web.Response:
        if problems:
            return self._json({"status": f"not {word}", "reasons": problems}, status=503)
        return self._json({"status": word})

    def _json(self, document: dict[str, Any], status: int = 200) -> web.Response:
        text = self._scrub(orjson.dumps(document).decode())
        return web.Response(text=text, status=status, content_type="application/json")
