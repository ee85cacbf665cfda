"""The ops HTTP server never shows a secret, whatever text a problem or the status carries."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiohttp
from prometheus_client import CollectorRegistry

from ingester.observe.health import Health
from ingester.observe.http import OpsServer
from ingester.observe.logs import SecretScrubber
from ingester.observe.metrics import Metrics

SECRET = "sasl-Pw-Zr8w3Kq1Lm0P"
REGISTRY_PASSWORD = "reg pass/9"  # as written in the URL: reg%20pass%2F9


async def test_readyz_healthz_and_status_pass_through_the_secret_scrubber() -> None:
    scrubber = SecretScrubber()
    scrubber.add(SECRET)
    scrubber.add_url("https://ingester:reg%20pass%2F9@registry.example:8081")
    problems = [
        f"Kafka producer not connected: SaslAuthenticationFailed: bad password {SECRET}",
        f"schema registry https://ingester:{REGISTRY_PASSWORD}@registry.example:8081 down",
        "schema registry https://ingester:reg%20pass%2F9@registry.example:8081 down",
    ]

    def connections() -> list[dict[str, Any]]:
        return [{"last_error": SECRET}]

    server = _server(problems, scrubber, {"connections": connections})
    await server.start("127.0.0.1", 0)
    try:
        async with aiohttp.ClientSession() as session:
            for path, code in (("/readyz", 503), ("/healthz", 503), ("/status", 200)):
                async with session.get(f"http://127.0.0.1:{server.port}{path}") as response:
                    body = await response.text()
                    assert response.status == code, (path, body)
                    assert response.content_type == "application/json"
                    await response.json()  # still a JSON document
                for secret in (SECRET, REGISTRY_PASSWORD, "reg%20pass%2F9"):
                    assert secret not in body, (path, body)
                assert "***" in body
    finally:
        await server.stop()


async def test_a_secret_that_json_escapes_is_scrubbed_too() -> None:
    """A password with a quote or a backslash is written escaped in the JSON text (``\\"``,
    ``\\\\``): the escaped form is scrubbed as well, so the decoded document holds no secret."""
    secret = 'pa"ss\\w0rd-9'
    scrubber = SecretScrubber()
    scrubber.add(secret)
    problems = [f"Kafka producer not connected: bad password {secret}"]
    server = _server(problems, scrubber, {})
    await server.start("127.0.0.1", 0)
    try:
        async with aiohttp.ClientSession() as session:
            for path in ("/readyz", "/healthz", "/status"):
                async with session.get(f"http://127.0.0.1:{server.port}{path}") as response:
                    document = await response.json()
                shown = "\n".join(document.get("reasons") or document["problems"])
                assert secret not in shown, (path, shown)
                assert "***" in shown, (path, shown)
    finally:
        await server.stop()


def _server(
    problems: list[str], scrubber: SecretScrubber, sections: dict[str, Callable[[], Any]]
) -> OpsServer:
    """A server whose every check, and its liveness, fail with ``problems``."""
    metrics = Metrics(CollectorRegistry())
    health = Health(metrics, "pod-1", lambda: problems, [lambda: problems], [], sections)
    return OpsServer(metrics, health, scrubber.scrub)
