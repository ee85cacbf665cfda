"""The upstream through a real HTTP CONNECT proxy (tinyproxy): from HTTPS_PROXY, forced by
SPORTRIX_PROXY with credentials that never show, and a proxy that refuses (407, 403) or
is down."""

from __future__ import annotations

from pathlib import Path

import pytest

from sportrix_devkit.waiting import free_port
from tests.e2e.harness import TopicReader, Topics, add_matches, wait_for
from tests.e2e.tls import (
    PROXY_PASSWORD,
    PROXY_USER,
    Pki,
    Tinyproxy,
    TlsSimulator,
    produces,
    tls_daemon,
    wait_failing,
)


@pytest.mark.parametrize("how", ["environment", "forced_with_credentials"])
async def test_wss_through_the_proxy(
    tmp_path: Path,
    pki: Pki,
    bootstrap: str,
    topics: Topics,
    data_reader: TopicReader,
    how: str,
) -> None:
    """HTTPS_PROXY as websockets reads it; or SPORTRIX_PROXY with credentials, which wins
    over HTTPS_PROXY and never shows (DEBUG logs included)."""
    simulator = TlsSimulator(tmp_path, pki.server, "--update-rate", "2")
    forced = how == "forced_with_credentials"
    proxy = Tinyproxy(tmp_path, auth=forced)
    elsewhere = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    settings = {
        "SPORTRIX_PROXY": (
            f"http://{PROXY_USER}:{PROXY_PASSWORD}@127.0.0.1:{proxy.port}" if forced else "auto"
        ),
        # The lower-case names win when both are set, so both are given.
        "HTTPS_PROXY": elsewhere if forced else proxy.url,
        "https_proxy": elsewhere if forced else proxy.url,
        "NO_PROXY": "",
        "no_proxy": "",
        "INGESTER_LOG_LEVEL": "DEBUG" if forced else "INFO",
    }
    daemon = tls_daemon(tmp_path, bootstrap, simulator.url, topics, pki, **settings)
    try:
        await produces(daemon, simulator, data_reader, pki)
        assert proxy.tunnels_to(simulator.port) >= 1
        shown = f"http://***@127.0.0.1:{proxy.port}" if forced else proxy.url
        visible = daemon.everything_visible()
        assert f"connected to {simulator.url} via proxy {shown}" in visible
        assert PROXY_PASSWORD not in visible
    finally:
        assert daemon.stop() == 0
        proxy.stop()
        simulator.stop()
    assert PROXY_PASSWORD not in daemon.output()


@pytest.mark.parametrize(
    ("case", "reason", "cause"),
    [
        ("no_credentials", "handshake_failed", "answered HTTP 407: proxy authentication failed"),
        ("wrong_password", "handshake_failed", "answered HTTP 401: proxy authentication failed"),
        ("forbidden", "handshake_failed", "answered HTTP 403: the proxy forbids this destination"),
        ("down", "error", "unreachable"),
    ],
)
async def test_a_refusing_or_dead_proxy_is_named_retried_and_not_ready(
    tmp_path: Path,
    pki: Pki,
    bootstrap: str,
    topics: Topics,
    case: str,
    reason: str,
    cause: str,
) -> None:
    simulator = TlsSimulator(tmp_path, pki.server)
    proxy = Tinyproxy(
        tmp_path, auth=case in ("no_credentials", "wrong_password"), forbid=case == "forbidden"
    )
    password = "Wr0ng-pass-9x" if case == "wrong_password" else PROXY_PASSWORD
    port = free_port() if case == "down" else proxy.port
    credentials = "" if case == "no_credentials" else f"{PROXY_USER}:{password}@"
    daemon = tls_daemon(
        tmp_path,
        bootstrap,
        simulator.url,
        topics,
        pki,
        SPORTRIX_PROXY=f"http://{credentials}127.0.0.1:{port}",
        INGESTER_BACKOFF_BASE="0.2",
        INGESTER_BACKOFF_CAP="30",
    )
    try:
        await daemon.wait_ready()
        match = simulator.live_soccer(pki)[0]
        await add_matches(bootstrap, topics.config, [match])
        readyz = await wait_failing(daemon, reason, cause)
        assert f"proxy http://{credentials and '***@'}127.0.0.1:{port}" in readyz
        if case != "down":
            await wait_for(lambda: proxy.output().count("CONNECT localhost:"), "the proxy asked")
        visible = daemon.everything_visible()
        assert password not in visible
        if case == "down":  # the proxy comes back: the daemon gets through by itself
            proxy.stop()
            proxy = Tinyproxy(tmp_path, auth=True, port=port)
            await daemon.wait_active([match])
            await daemon.wait_ready()
            assert proxy.tunnels_to(simulator.port) >= 1
    finally:
        assert daemon.stop() == 0
        proxy.stop()
        simulator.stop()
    assert password not in daemon.output()
