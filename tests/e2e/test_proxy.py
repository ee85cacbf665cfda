"""The upstream through a real HTTP CONNECT proxy (tinyproxy): from HTTPS_PROXY, forced by
SPORTRIX_PROXY with credentials that never show, and a proxy that refuses (407, 403) or
is down."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingester.bench.processes import free_port
from tests.e2e.harness import Daemon, TopicReader, Topics, add_matches, wait_for
from tests.e2e.tls import (
    PROXY_PASSWORD,
    PROXY_USER,
    Pki,
    Tinyproxy,
    TlsSimulator,
    wait_failing,
)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """The CA and the simulator's certificate."""
    return Pki.make(tmp_path_factory.mktemp("pki"))


async def test_https_proxy_from_the_environment_carries_wss(
    tmp_path: Path, pki: Pki, bootstrap: str, topics: Topics, data_reader: TopicReader
) -> None:
    simulator = TlsSimulator(tmp_path, pki.server, "--update-rate", "2")
    proxy = Tinyproxy(tmp_path)
    daemon = Daemon(
        tmp_path,
        bootstrap,
        simulator.url,
        topics,
        SPORTRIX_CA_FILE=str(pki.ca),
        SPORTRIX_PROXY="auto",
        HTTPS_PROXY=proxy.url,
        https_proxy=proxy.url,  # the lower-case name wins when both are set
        NO_PROXY="",
        no_proxy="",
    )
    try:
        match = simulator.live_soccer(pki)[0]
        await daemon.follow([match])
        await data_reader.poll_until(
            lambda records: any(r.key == str(match).encode() for r in records),
            "records through the proxy",
        )
        assert proxy.tunnels_to(simulator.port) >= 1
        assert f"via proxy {proxy.url}" in daemon.output()
    finally:
        assert daemon.stop() == 0
        proxy.stop()
        simulator.stop()


async def test_a_forced_proxy_with_credentials_never_shows_them(
    tmp_path: Path, pki: Pki, bootstrap: str, topics: Topics, data_reader: TopicReader
) -> None:
    simulator = TlsSimulator(tmp_path, pki.server, "--update-rate", "2")
    proxy = Tinyproxy(tmp_path, auth=True)
    daemon = Daemon(
        tmp_path,
        bootstrap,
        simulator.url,
        topics,
        SPORTRIX_CA_FILE=str(pki.ca),
        SPORTRIX_PROXY=f"http://{PROXY_USER}:{PROXY_PASSWORD}@127.0.0.1:{proxy.port}",
        HTTPS_PROXY=f"http://127.0.0.1:{free_port()}",  # overridden: nothing listens there
        INGESTER_LOG_LEVEL="DEBUG",
    )
    try:
        match = simulator.live_soccer(pki)[0]
        await daemon.follow([match])
        await data_reader.poll_until(
            lambda records: any(r.key == str(match).encode() for r in records),
            "records through the authenticating proxy",
        )
        assert proxy.tunnels_to(simulator.port) >= 1
        visible = daemon.everything_visible()
        assert f"via proxy http://***@127.0.0.1:{proxy.port}" in visible
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
    daemon = Daemon(
        tmp_path,
        bootstrap,
        simulator.url,
        topics,
        SPORTRIX_CA_FILE=str(pki.ca),
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
