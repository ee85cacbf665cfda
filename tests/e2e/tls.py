"""Real TLS and a real proxy for the end-to-end tests: certificates made at run time
(``trustme``), the simulator serving ``wss://``, ``openssl s_server`` as an upstream that
only speaks TLS 1.2, and ``tinyproxy`` (an HTTP CONNECT proxy, installed by
``scripts/install-tools``) as the egress proxy.
"""

from __future__ import annotations

import datetime
import json
import shutil
import socket
import ssl
import subprocess
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trustme

from sportrix_devkit.waiting import free_port, wait_until
from tests.e2e.harness import TEST_KEY, Daemon, Process, TopicReader, Topics, wait_for

#: A proxy password distinctive enough that a leak anywhere is found by a search.
PROXY_PASSWORD = "pxy-Zr8u4TqW"
PROXY_USER = "egress"
HANDSHAKE_FAILED = ("sportrix_ingester_upstream_reconnects_total", "handshake_failed")


@dataclass(frozen=True)
class Pki:
    """PEM files: the test CA, an unrelated CA, and certificates it issued."""

    ca: Path
    other_ca: Path
    server: Path  # localhost and 127.0.0.1, valid now (key and chain in one file)
    server_cert: Path  # the same certificate alone...
    server_key: Path  # ...and its key
    expired: Path  # localhost, expired in 2020
    wrong_host: Path  # valid now, for upstream.example only
    client: Path  # a client certificate (mutual TLS), key and chain in one file

    @classmethod
    def make(cls, directory: Path) -> Pki:
        """Issue everything into ``directory``."""
        directory.mkdir(parents=True, exist_ok=True)
        ca, other = trustme.CA(), trustme.CA()
        ca.cert_pem.write_to_path(directory / "ca.pem")
        other.cert_pem.write_to_path(directory / "other-ca.pem")

        def issue(name: str, *identities: str, **kwargs: Any) -> Path:
            leaf = ca.issue_cert(*identities, **kwargs)
            leaf.private_key_and_cert_chain_pem.write_to_path(directory / f"{name}.pem")
            if name == "server":
                leaf.cert_chain_pems[0].write_to_path(directory / "server-cert.pem")
                leaf.private_key_pem.write_to_path(directory / "server-key.pem")
            return directory / f"{name}.pem"

        past = datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)
        return cls(
            ca=directory / "ca.pem",
            other_ca=directory / "other-ca.pem",
            server=issue("server", "localhost", "127.0.0.1"),
            server_cert=directory / "server-cert.pem",
            server_key=directory / "server-key.pem",
            expired=issue(
                "expired",
                "localhost",
                not_before=past,
                not_after=past + datetime.timedelta(days=30),
            ),
            wrong_host=issue("wrong-host", "upstream.example"),
            client=issue("client", "ingester.example"),
        )


def _wait_listening(port: int, process: Process, what: str) -> None:
    def accepting() -> bool:
        if not process.alive():
            raise AssertionError(f"{what} exited:\n{process.output()[-3000:]}")
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True

    wait_until(
        accepting,
        f"{what} to listen on port {port}",
        30,
        retry_on=(OSError,),
        details=lambda: process.output()[-3000:],
    )


class TlsSimulator(Process):
    """``sportrix-ingester simulate --tls-cert CERT`` on a free port; ``url`` is
    ``wss://localhost:PORT/v1/stream``."""

    def __init__(self, tmp: Path, cert: Path, *args: str) -> None:
        self.port = free_port()
        super().__init__(
            ["simulate", "--host", "127.0.0.1", "--port", str(self.port), "--seed", "7",
             "--api-key", TEST_KEY, "--tls-cert", str(cert), *args],
            tmp / f"simulator-tls-{self.port}.log",
        )  # fmt: skip
        self.url = f"wss://localhost:{self.port}/v1/stream"
        _wait_listening(self.port, self, "the TLS simulator")

    def live_soccer(self, pki: Pki) -> list[int]:
        """Live soccer match ids, read from ``https://`` (the client certificate shown)."""
        context = ssl.create_default_context(cafile=str(pki.ca))
        context.load_cert_chain(pki.client)
        url = f"https://localhost:{self.port}/v1/matches"
        with urllib.request.urlopen(url, timeout=5, context=context) as response:
            catalogue: list[dict[str, Any]] = json.loads(response.read())
        return [
            m["match_id"] for m in catalogue if m["sport"] == "soccer" and m["status"] == "live"
        ]


class _External(Process):
    """A process that is not ``python -m ingester`` (openssl, tinyproxy), stopped the same way."""

    def __init__(self, command: list[str], log: Path) -> None:
        self.log = log
        self._terminated = False
        self._out = log.open("ab")
        self.proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


class Tls12Server(_External):
    """``openssl s_server`` offering TLS 1.2 only, with a certificate the tests trust."""

    def __init__(self, tmp: Path, pki: Pki) -> None:
        self.port = free_port()
        openssl = shutil.which("openssl")
        assert openssl, "openssl is needed (it also makes the broker's test certificates)"
        super().__init__(
            [openssl, "s_server", "-accept", str(self.port), "-tls1_2", "-quiet",
             "-cert", str(pki.server_cert), "-key", str(pki.server_key)],
            tmp / f"openssl-{self.port}.log",
        )  # fmt: skip
        self.url = f"wss://localhost:{self.port}/v1/stream"
        _wait_listening(self.port, self, "openssl s_server")


class Tinyproxy(_External):
    """A real HTTP CONNECT proxy on a free loopback port.

    ``auth``: require Basic credentials (``PROXY_USER``/``PROXY_PASSWORD``; others get 407).
    ``forbid``: allow CONNECT to port 443 only, so a tunnel to the simulator gets 403.
    """

    def __init__(
        self, tmp: Path, *, auth: bool = False, forbid: bool = False, port: int | None = None
    ) -> None:
        binary = shutil.which("tinyproxy")
        assert binary, "tinyproxy is missing: run scripts/install-tools"
        self.port = port or free_port()
        config = tmp / f"tinyproxy-{self.port}.conf"
        lines = [f"Port {self.port}", "Listen 127.0.0.1", "Timeout 60", "LogLevel Connect"]
        if auth:
            lines.append(f"BasicAuth {PROXY_USER} {PROXY_PASSWORD}")
        if forbid:
            lines.append("ConnectPort 443")
        config.write_text("\n".join(lines) + "\n")
        super().__init__([binary, "-d", "-c", str(config)], tmp / f"tinyproxy-{self.port}.log")
        self.url = f"http://127.0.0.1:{self.port}"
        _wait_listening(self.port, self, "tinyproxy")

    def tunnels_to(self, port: int) -> int:
        """How many CONNECT requests to ``localhost:port`` the proxy has logged."""
        return self.output().count(f"CONNECT localhost:{port} ")


def tls_daemon(
    tmp: Path, bootstrap: str, upstream_url: str, topics: Topics, pki: Pki, **settings: str
) -> Daemon:
    """A daemon trusting the test CA (``SPORTRIX_CA_FILE``), with ``settings`` on top."""
    return Daemon(tmp, bootstrap, upstream_url, topics, SPORTRIX_CA_FILE=str(pki.ca), **settings)


async def produces(
    daemon: Daemon, simulator: TlsSimulator, data_reader: TopicReader, pki: Pki
) -> None:
    """Follow a live match and wait for its records in the data topic: the path works."""
    match = simulator.live_soccer(pki)[0]
    await daemon.follow([match])
    await data_reader.poll_until(
        lambda records: any(r.key == str(match).encode() for r in records),
        f"records of match {match}",
    )
    assert daemon.total("sportrix_ingester_upstream_reconnects_total") == 0


def failure_lines(daemon: Daemon) -> list[dict[str, Any]]:
    """The daemon's log events about failed connection attempts (JSON lines)."""
    events = [json.loads(line) for line in daemon.output().splitlines() if line.startswith("{")]
    return [e for e in events if "reconnecting in" in e["message"]]


async def wait_failing(daemon: Daemon, reason: str, cause: str, attempts: int = 3) -> str:
    """Wait until ``attempts`` connection attempts failed with ``reason`` naming ``cause``;
    check what an operator sees, and that attempts back off; the ``/readyz`` body."""

    def failed() -> bool:
        if not daemon.alive():
            raise AssertionError(f"daemon exited:\n{daemon.output()[-4000:]}")
        return len(failure_lines(daemon)) >= attempts

    await wait_for(failed, f"{attempts} failed attempts ({reason})", 60)
    metrics = daemon.metrics()
    key = "sportrix_ingester_upstream_reconnects_total"
    assert metrics[(key, (("reason", reason),))] >= attempts
    for other in ("handshake_failed", "error", "auth_failed", "timeout", "closed"):
        if other != reason:
            assert metrics[(key, (("reason", other),))] == 0, other

    lines = failure_lines(daemon)
    for event in lines:  # one line per attempt, naming the reason and the cause, no traceback
        assert f": {reason} (" in event["message"], event
        assert cause in event["message"], event
        assert "exception" not in event, event
    # Backoff, not a tight loop: each attempt waits at least the delay its line announced.
    stamps = [datetime.datetime.fromisoformat(e["ts"]) for e in lines]
    delays = [float(e["message"].rsplit("reconnecting in ", 1)[1].rstrip("s")) for e in lines]
    for before, after, delay in zip(stamps, stamps[1:], delays, strict=False):
        assert (after - before).total_seconds() >= delay - 0.06, (before, after, delay)

    code, body = daemon.get("/readyz")
    assert code == 503, body
    text = body.decode()
    assert cause in text, text
    (connection,) = daemon.status()["connections"]
    assert cause in connection["last_failure"], connection
    return text
