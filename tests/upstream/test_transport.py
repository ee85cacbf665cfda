"""TLS and proxy set-up, and how a failed connect is classified (no sockets)."""

from __future__ import annotations

import base64
import os
import ssl
import subprocess
import sys
from pathlib import Path

import pytest
import trustme
from websockets.datastructures import Headers
from websockets.exceptions import InvalidMessage, InvalidProxyStatus, InvalidStatus
from websockets.http11 import Response

from ingester.observe.logs import SecretScrubber
from ingester.settings import ConfigError, load_settings
from ingester.upstream.transport import (
    Failure,
    UpstreamTransport,
    classify_failure,
    redact_proxy,
)

_PROXY_VARS = (
    "HTTPS_PROXY",
    "HTTP_PROXY",
    "NO_PROXY",
    "WSS_PROXY",
    "WS_PROXY",
    "SOCKS_PROXY",
    "ALL_PROXY",
)


@pytest.fixture(autouse=True)
def _no_proxy_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


def _transport(
    url: str = "wss://scores.example:443/v1/stream", **settings: object
) -> UpstreamTransport:
    return UpstreamTransport(load_settings(url=url, **settings))


def _response(status: int) -> Response:
    return Response(status, "", Headers())


def test_proxy_from_https_proxy_unless_no_proxy_names_the_host(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.corp:3128")
    assert _transport().proxy == "http://proxy.corp:3128"
    assert _transport("ws://scores.example/v1/stream").proxy == "http://proxy.corp:3128"
    monkeypatch.setenv("WSS_PROXY", "http://wss-only.corp:3128")
    assert _transport().proxy == "http://wss-only.corp:3128"  # websockets' own variable first
    monkeypatch.setenv("NO_PROXY", ".example")
    assert _transport().proxy is None


def test_sportrix_proxy_forces_a_proxy_or_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.corp:3128")
    monkeypatch.setenv("NO_PROXY", "scores.example")
    assert _transport(proxy="http://other:8080").proxy == "http://other:8080"
    assert _transport(proxy="none").proxy is None
    monkeypatch.delenv("NO_PROXY")
    assert _transport(proxy="auto").proxy == "http://proxy.corp:3128"


def test_proxy_credentials_are_hidden_and_registered_as_secrets() -> None:
    transport = _transport(proxy="http://svc%40corp:p%40ss-w0rd@proxy.corp:3128")
    assert transport.proxy_shown == "http://***@proxy.corp:3128"
    assert transport.via == " via proxy http://***@proxy.corp:3128"
    basic = base64.b64encode(b"svc@corp:p@ss-w0rd").decode()
    scrubber = SecretScrubber()
    scrubber.add_url(transport.proxy)
    for form in ("p%40ss-w0rd", "p@ss-w0rd", basic):
        assert scrubber.scrub(f"<{form}>") == "<***>", form
    assert redact_proxy("http://proxy.corp:3128") == "http://proxy.corp:3128"
    without = SecretScrubber()
    without.add_url(_transport(proxy="http://proxy.corp:3128").proxy)
    assert without.scrub("http://proxy.corp:3128") == "http://proxy.corp:3128"


@pytest.mark.parametrize(
    ("settings", "env", "named"),
    [
        ({"proxy": "socks5://proxy.corp:1080"}, {}, "SPORTRIX_PROXY"),
        ({"proxy": "http://"}, {}, "SPORTRIX_PROXY"),
        ({}, {"HTTPS_PROXY": "socks5h://proxy.corp:1080"}, "HTTPS_PROXY"),
        ({}, {"SOCKS_PROXY": "http://proxy.corp:1080"}, "SOCKS_PROXY"),
        ({"proxy": "http://user@proxy.corp:3128"}, {}, "SPORTRIX_PROXY"),
    ],
)
def test_an_unusable_proxy_stops_start_up_naming_its_variable(
    monkeypatch: pytest.MonkeyPatch, settings: dict[str, str], env: dict[str, str], named: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=named) as caught:
        _transport(**settings)
    assert "proxy.corp" not in str(caught.value)


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"SPORTRIX_PROXY": "ftp://u:hunter22@proxy:21"}, "SPORTRIX_PROXY"),
        ({"SPORTRIX_CA_FILE": "/nonexistent/ca.pem"}, "SPORTRIX_CA_FILE"),
        ({"SPORTRIX_CLIENT_KEY_FILE": __file__}, "SPORTRIX_CLIENT_KEY_FILE"),
        ({"SPORTRIX_TLS_MIN_VERSION": "1.1"}, "SPORTRIX_TLS_MIN_VERSION"),
    ],
)
def test_bad_tls_and_proxy_settings_name_the_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named) as caught:
        load_settings(**{_field(k): v for k, v in env.items()})
    assert "hunter22" not in str(caught.value)


def _field(env: str) -> str:
    return {
        "SPORTRIX_PROXY": "proxy",
        "SPORTRIX_CA_FILE": "ca_file",
        "SPORTRIX_CLIENT_KEY_FILE": "client_key_file",
        "SPORTRIX_TLS_MIN_VERSION": "tls_min_version",
    }[env]


def test_a_ca_file_that_is_not_pem_exits_2_naming_it(tmp_path: Path) -> None:
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate\n")
    env = {
        **os.environ,
        "SPORTRIX_API_KEY": "k-123456",
        "SPORTRIX_CA_FILE": str(bad),
        "SPORTRIX_PROXY": "none",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "ingester", "run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert "SPORTRIX_CA_FILE" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_the_ca_file_is_added_to_the_system_cas(tmp_path: Path) -> None:
    ca = trustme.CA()
    ca.cert_pem.write_to_path(tmp_path / "ca.pem")
    system = ssl.create_default_context().cert_store_stats()["x509_ca"]
    context = _transport(ca_file=tmp_path / "ca.pem").connect_kwargs()["ssl"]
    assert isinstance(context, ssl.SSLContext)
    assert context.cert_store_stats()["x509_ca"] == system + 1
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname
    assert context.minimum_version is ssl.TLSVersion.TLSv1_2


def test_plain_ws_warns_unless_the_upstream_is_loopback() -> None:
    assert _transport("ws://scores.example/v1/stream").warnings
    assert _transport("ws://127.0.0.1:8765/v1/stream").warnings == ()
    assert _transport("ws://localhost:8765/v1/stream").warnings == ()
    assert _transport().warnings == ()
    assert "ssl" not in _transport("ws://localhost/v1/stream").connect_kwargs()


@pytest.mark.parametrize(
    ("exc", "reason", "cause"),
    [
        (InvalidStatus(_response(401)), "auth_failed", "HTTP 401"),
        (InvalidStatus(_response(503)), "handshake_failed", "HTTP 503"),
        (InvalidProxyStatus(_response(407)), "handshake_failed", "proxy authentication failed"),
        (InvalidProxyStatus(_response(403)), "handshake_failed", "forbids this destination"),
        (InvalidProxyStatus(_response(502)), "handshake_failed", "could not open a tunnel"),
        (TimeoutError(), "handshake_failed", "within 10s"),
        (ConnectionRefusedError(111, "Connection refused"), "error", "proxy http://***@"),
        (ConnectionResetError(), "handshake_failed", "may require a client certificate"),
    ],
)
def test_failures_are_classified(exc: BaseException, reason: str, cause: str) -> None:
    transport = _transport(proxy="http://u:pw-123456@proxy.corp:3128")
    failure = classify_failure(exc, transport)
    assert failure.reason == reason
    assert cause in failure.cause
    assert "pw-123456" not in failure.cause


def test_an_eof_is_a_tls_hint_only_on_wss() -> None:
    eof = InvalidMessage("did not receive a valid HTTP response")
    eof.__cause__ = EOFError()
    assert "client certificate" in classify_failure(eof, _transport()).cause
    plain = classify_failure(eof, _transport("ws://127.0.0.1/v1/stream", proxy="none"))
    assert plain.reason == "handshake_failed"
    assert "client certificate" not in plain.cause
    refused = classify_failure(ConnectionRefusedError(111, "Connection refused"), _transport())
    assert refused == Failure("error", "scores.example:443 unreachable: Connection refused")


def test_the_proxy_url_can_come_from_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://ignored:3128")
    url = tmp_path / "proxy-url"
    url.write_text("http://svc:s3cret-pw@proxy.corp:3128\n")
    transport = _transport(proxy_file=url)
    assert transport.proxy == "http://svc:s3cret-pw@proxy.corp:3128"
    scrubber = SecretScrubber()
    scrubber.add_url(transport.proxy)
    assert scrubber.scrub("s3cret-pw") == "***"
    url.write_text("socks5://proxy.corp:1080\n")
    with pytest.raises(ConfigError, match="SPORTRIX_PROXY_FILE"):
        _transport(proxy_file=url)
    with pytest.raises(ConfigError, match="not both"):
        load_settings(proxy="none", proxy_file=url)
