"""wss:// end to end: certificate and host-name verification on, a custom CA, mutual TLS,
and each way a TLS handshake fails, as an operator sees it (log line, reconnect reason,
/readyz, backoff)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sportrix_devkit.waiting import free_port
from tests.e2e.harness import Daemon, TopicReader, Topics, add_matches
from tests.e2e.tls import (
    Pki,
    Tls12Server,
    TlsSimulator,
    failure_lines,
    produces,
    tls_daemon,
    wait_failing,
)


async def test_wss_with_the_ca_file_verified_end_to_end(
    tmp_path: Path, pki: Pki, bootstrap: str, topics: Topics, data_reader: TopicReader
) -> None:
    simulator = TlsSimulator(tmp_path, pki.server, "--update-rate", "2")
    daemon = tls_daemon(tmp_path, bootstrap, simulator.url, topics, pki)
    try:
        await produces(daemon, simulator, data_reader, pki)
        assert "connected to wss://localhost:" in daemon.output()
    finally:
        assert daemon.stop() == 0
        simulator.stop()


async def test_mutual_tls_with_a_client_certificate(
    tmp_path: Path, pki: Pki, bootstrap: str, topics: Topics, data_reader: TopicReader
) -> None:
    simulator = TlsSimulator(
        tmp_path, pki.server, "--tls-client-ca", str(pki.ca), "--update-rate", "2"
    )
    daemon = tls_daemon(
        tmp_path, bootstrap, simulator.url, topics, pki, SPORTRIX_CLIENT_CERT_FILE=str(pki.client)
    )
    try:
        await produces(daemon, simulator, data_reader, pki)
    finally:
        assert daemon.stop() == 0
        simulator.stop()


@pytest.mark.parametrize(
    ("case", "cause"),
    [
        ("expired", "the upstream's certificate has expired"),
        ("wrong_host", "the upstream's certificate is for another host name"),
        ("unknown_ca", "the upstream's certificate is signed by an unknown CA"),
        ("other_ca", "the upstream's certificate is signed by an unknown CA"),
        ("tls_version", "TLS version mismatch"),
        ("no_client_cert", "it may require a client certificate"),
    ],
)
async def test_a_failed_tls_handshake_is_named_retried_with_backoff_and_not_ready(
    tmp_path: Path, pki: Pki, bootstrap: str, topics: Topics, case: str, cause: str
) -> None:
    settings = {"SPORTRIX_CA_FILE": str(pki.ca)}
    upstream: Tls12Server | TlsSimulator
    match = 41000  # any id will do where the daemon never gets through
    if case == "tls_version":
        upstream = Tls12Server(tmp_path, pki)
        settings["SPORTRIX_TLS_MIN_VERSION"] = "1.3"
    elif case == "no_client_cert":
        upstream = TlsSimulator(tmp_path, pki.server, "--tls-client-ca", str(pki.ca))
    else:
        cert = {"expired": pki.expired, "wrong_host": pki.wrong_host}.get(case, pki.server)
        upstream = TlsSimulator(tmp_path, cert)
        if case == "unknown_ca":
            del settings["SPORTRIX_CA_FILE"]  # the system CAs alone
        elif case == "other_ca":  # a file rewritten with the right CA below
            settings["SPORTRIX_CA_FILE"] = str(tmp_path / "ca-bundle.pem")
            (tmp_path / "ca-bundle.pem").write_bytes(pki.other_ca.read_bytes())
            match = upstream.live_soccer(pki)[0]  # followed once the right CA is in
    daemon = Daemon(
        tmp_path,
        bootstrap,
        upstream.url,
        topics,
        INGESTER_BACKOFF_BASE="0.2",
        INGESTER_BACKOFF_CAP="30",
        **settings,
    )
    try:
        await daemon.wait_ready()
        await add_matches(bootstrap, topics.config, [match])
        readyz = await wait_failing(daemon, "handshake_failed", cause)
        assert "upstream not connected" in readyz
        assert daemon.alive()
        if case == "other_ca":  # the CA file is read again at every attempt: no restart
            (tmp_path / "ca-bundle.pem").write_bytes(pki.ca.read_bytes())
            await daemon.wait_active([match])
            await daemon.wait_ready()
    finally:
        assert daemon.stop() == 0
        upstream.stop()


async def test_plain_ws_to_a_remote_host_warns_at_every_connect(
    tmp_path: Path, bootstrap: str, topics: Topics
) -> None:
    # 0.0.0.0 is not a loopback name, yet reaches this host: nothing listens there.
    url = f"ws://0.0.0.0:{free_port()}/v1/stream"
    daemon = Daemon(tmp_path, bootstrap, url, topics, INGESTER_BACKOFF_BASE="0.2")
    try:
        await daemon.wait_ready()
        await add_matches(bootstrap, topics.config, [41000])
        await wait_failing(daemon, "error", "unreachable", attempts=2)
        events = [json.loads(line) for line in daemon.output().splitlines()]
        warnings = [e for e in events if "ws:// (no TLS)" in e["message"]]
        assert len(warnings) >= len(failure_lines(daemon)) >= 2
        assert all(e["level"] == "warning" for e in warnings)
    finally:
        assert daemon.stop() == 0
