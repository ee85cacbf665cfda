"""How a session reaches the upstream: TLS trust, the client certificate, the egress proxy.

:class:`UpstreamTransport` is built once at start-up from the settings and the environment
(a bad CA bundle, certificate or proxy stops start-up naming the setting). At each
connection attempt :meth:`UpstreamTransport.connect_kwargs` gives what ``websockets``'
``connect()`` needs (the SSL context is rebuilt, so a rotated CA bundle or client
certificate is picked up on the next reconnect), and :func:`classify_failure` turns a failed
attempt into a reconnect reason and one line a person can act on. Proxy credentials never
leave this module except in :attr:`UpstreamTransport.proxy`, which the caller registers
with the log scrubber (``SecretScrubber.add_url``).
"""

from __future__ import annotations

import ipaddress
import ssl
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from websockets.exceptions import (
    InvalidHandshake,
    InvalidMessage,
    InvalidProxyMessage,
    InvalidProxyStatus,
    InvalidStatus,
)
from websockets.uri import WebSocketURI, parse_uri

from ingester.settings import ConfigError, Settings

__all__ = [
    "Failure",
    "TransportError",
    "UpstreamTransport",
    "classify_failure",
    "redact_proxy",
    "redact_url",
]

_TLS_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}
# OpenSSL's X509_V_ERR_* codes (ssl.SSLCertVerificationError.verify_code).
_CERT_NOT_YET_VALID = 9
_CERT_EXPIRED = 10
_UNKNOWN_CA = {2, 18, 19, 20, 21}  # no issuer, self-signed (alone or in the chain), no chain
_HOSTNAME_MISMATCH = 62
_IP_MISMATCH = 64
# OpenSSL reason codes of a handshake that found no protocol version both sides speak.
_VERSION_REASONS = {
    "TLSV1_ALERT_PROTOCOL_VERSION",
    "UNSUPPORTED_PROTOCOL",
    "NO_PROTOCOLS_AVAILABLE",
    "TLSV1_ALERT_INSUFFICIENT_SECURITY",
}
_PROXY_AUTH = "proxy authentication failed: check the user:password in the proxy URL"
_PROXY_STATUS = {  # some proxies (tinyproxy) answer bad credentials with 401, not 407
    401: _PROXY_AUTH,
    407: _PROXY_AUTH,
    403: "the proxy forbids this destination",
}


@dataclass(frozen=True)
class Failure:
    """A failed connection attempt: ``reason`` is the reconnects metric label, ``cause``
    one line naming what went wrong (never a secret)."""

    reason: str
    cause: str


class TransportError(Exception):
    """The TLS material could not be loaded at connect time (e.g. a file disappeared)."""


def redact_url(url: str) -> str:
    """``url`` without its query string, which may carry ``?key=``."""
    return url.split("?", 1)[0] + ("?<redacted>" if "?" in url else "")


def redact_proxy(url: str) -> str:
    """``url`` with any ``user:password@`` replaced by ``***@``."""
    parts = urllib.parse.urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit(parts._replace(netloc=f"***@{host}"))


class UpstreamTransport:
    """TLS and proxy set-up for ``settings.url``; see the module docstring.

    With ``SPORTRIX_PROXY=auto`` (the default) the proxy comes from ``HTTPS_PROXY``,
    ``HTTP_PROXY`` and ``NO_PROXY``, read exactly as ``websockets`` and the standard
    library read them. Raises :class:`ConfigError` naming the setting at fault.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        uri = parse_uri(settings.url)
        self.secure = uri.secure
        self.address = f"{uri.host}:{uri.port}"
        self.proxy, source = _choose_proxy(settings, uri)
        self.proxy_shown = redact_proxy(self.proxy) if self.proxy else None
        #: `` via proxy URL`` (credentials hidden), or ``""`` without a proxy: for log lines.
        self.via = f" via proxy {self.proxy_shown}" if self.proxy_shown else ""
        problem = _proxy_problem(self.proxy) if self.proxy else None
        if problem:
            raise ConfigError(f"invalid setting {source}: {problem}")
        #: Logged at every connect: settings that weaken the connection's security.
        self.warnings: tuple[str, ...] = ()
        if not self.secure and not _is_loopback(uri.host):
            self.warnings = (
                "SPORTRIX_URL is ws:// (no TLS): the API key and the scores cross the "
                "network unencrypted",
            )
        if self.secure:
            try:
                self._ssl_context()
            except TransportError as exc:
                raise ConfigError(f"invalid setting {exc}") from None

    def connect_kwargs(self) -> dict[str, Any]:
        """``ssl`` and ``proxy`` arguments for ``websockets.asyncio.client.connect``.

        Raises :class:`TransportError` when the TLS files cannot be loaded any more.
        """
        kwargs: dict[str, Any] = {"proxy": self.proxy}
        if self.secure:
            kwargs["ssl"] = self._ssl_context()
        return kwargs

    def _ssl_context(self) -> ssl.SSLContext:
        """The system CAs plus ``SPORTRIX_CA_FILE``, verification and host-name check on."""
        settings = self._settings
        context = ssl.create_default_context()
        context.minimum_version = _TLS_VERSIONS[settings.tls_min_version]
        step = "SPORTRIX_CA_FILE"
        try:
            if settings.ca_file is not None:
                context.load_verify_locations(cafile=str(settings.ca_file))
            if settings.client_cert_file is not None:
                step = "SPORTRIX_CLIENT_CERT_FILE"
                context.load_cert_chain(
                    str(settings.client_cert_file),
                    str(settings.client_key_file) if settings.client_key_file else None,
                )
        except (OSError, ssl.SSLError) as exc:
            raise TransportError(f"{step}: cannot be loaded ({_ssl_text(exc)})") from None
        return context


def _choose_proxy(settings: Settings, uri: WebSocketURI) -> tuple[str | None, str]:
    """The proxy URL (or ``None``) and the name of the setting it came from."""
    forced = settings.read_proxy()
    source = "SPORTRIX_PROXY_FILE" if settings.proxy_file else "SPORTRIX_PROXY"
    if forced == "none":
        return None, source
    if forced != "auto":
        return forced, source
    # What websockets' connect(proxy=True) does (its helper moved between modules from 15 to
    # 16, so it is not imported): NO_PROXY first, then a proxy per scheme, the standard
    # library reading the environment (lower-case names winning over upper-case ones).
    if urllib.request.proxy_bypass(f"{uri.host}:{uri.port}"):
        return None, "NO_PROXY"
    proxies = urllib.request.getproxies()
    schemes = ("wss", "socks", "https") if uri.secure else ("ws", "socks", "https", "http")
    for scheme in schemes:
        proxy = proxies.get(scheme)
        if proxy:
            if scheme == "socks" and proxy.startswith("http://"):
                proxy = "socks5h://" + proxy.removeprefix("http://")  # as websockets reads it
            return proxy, f"{scheme.upper()}_PROXY"
    return None, "HTTPS_PROXY"


def _proxy_problem(proxy: str) -> str | None:
    """Why ``proxy`` cannot be used (never quoting it: it may hold a password), or None."""
    try:
        parts = urllib.parse.urlsplit(proxy)
        parts.port  # noqa: B018  (raises ValueError on a bad port)
    except ValueError:
        return "not a valid proxy URL"
    if parts.scheme not in ("http", "https"):
        scheme = parts.scheme or "no scheme"
        return f"{scheme}:// proxies are not supported (use an http:// or https:// proxy)"
    if not parts.hostname or parts.path not in ("", "/") or parts.query or parts.fragment:
        return "not a valid proxy URL (http[s]://[user:password@]host[:port])"
    if parts.username is not None and parts.password is None:
        return "a proxy user needs a password (user:password@)"
    return None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _ssl_text(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return exc.reason.lower().replace("_", " ")
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)


def classify_failure(exc: BaseException, transport: UpstreamTransport) -> Failure:
    """The reconnect reason and the cause of a failed ``connect()``.

    ``auth_failed``: the upstream answered 401/403. ``handshake_failed``: TLS (expired or
    not yet valid certificate, host name mismatch, unknown CA, no common TLS version),
    the proxy refused the tunnel, or the WebSocket handshake failed. ``error``: the
    upstream or the proxy could not be reached at all.
    """
    where, via = transport.address, transport.via
    if isinstance(exc, InvalidStatus):
        status = exc.response.status_code
        reason = "auth_failed" if status in (401, 403) else "handshake_failed"
        return Failure(reason, f"HTTP {status}")
    if isinstance(exc, InvalidProxyStatus):
        status = exc.response.status_code
        meaning = _PROXY_STATUS.get(
            status, f"the proxy could not open a tunnel to {where} (is the upstream reachable?)"
        )
        return Failure(
            "handshake_failed", f"proxy {transport.proxy_shown} answered HTTP {status}: {meaning}"
        )
    if isinstance(exc, InvalidProxyMessage):
        return Failure(
            "handshake_failed",
            f"proxy {transport.proxy_shown} did not answer the CONNECT request with HTTP",
        )
    if isinstance(exc, TransportError):
        return Failure("handshake_failed", f"TLS set-up: {exc}")
    tls_cause = _tls_cause(exc) if transport.secure else None
    if tls_cause is not None:
        return Failure("handshake_failed", f"TLS handshake with {where}{via}: {tls_cause}")
    if isinstance(exc, TimeoutError):
        return Failure("handshake_failed", f"no handshake with {where}{via} within 10s")
    if isinstance(exc, InvalidHandshake):
        return Failure("handshake_failed", redact_url(str(exc) or type(exc).__name__))
    if transport.proxy_shown is not None:
        return Failure("error", f"proxy {transport.proxy_shown} unreachable: {_ssl_text(exc)}")
    return Failure("error", f"{where} unreachable: {_ssl_text(exc)}")


def _cut_short(exc: BaseException) -> bool:
    """A connection closed by the server during the handshake, without a TLS alert."""
    if isinstance(exc, InvalidMessage):
        return isinstance(exc.__cause__, EOFError | ConnectionResetError)
    return isinstance(exc, ConnectionResetError | ssl.SSLEOFError)


def _cert_cause(exc: ssl.SSLCertVerificationError) -> str:
    code, message = exc.verify_code, exc.verify_message or "verification failed"
    if code == _CERT_EXPIRED:
        return "the upstream's certificate has expired"
    if code == _CERT_NOT_YET_VALID:
        return "the upstream's certificate is not valid yet (is the clock right?)"
    if code in (_HOSTNAME_MISMATCH, _IP_MISMATCH):
        return f"the upstream's certificate is for another host name ({message})"
    if code in _UNKNOWN_CA:
        return (
            f"the upstream's certificate is signed by an unknown CA ({message}); "
            "a TLS-inspecting proxy's CA goes in SPORTRIX_CA_FILE"
        )
    return f"the upstream's certificate was rejected ({message})"


def _tls_cause(exc: BaseException) -> str | None:
    """What went wrong in the TLS handshake, or ``None`` when ``exc`` is not about TLS."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return _cert_cause(exc)
    if _cut_short(exc):
        return (
            "the upstream closed the connection: it may require a client certificate "
            "(SPORTRIX_CLIENT_CERT_FILE) or a TLS version this client does not offer"
        )
    if not isinstance(exc, ssl.SSLError):
        return None
    reason = exc.reason or ""
    if reason in _VERSION_REASONS:
        return (
            "TLS version mismatch: no protocol version both sides accept (SPORTRIX_TLS_MIN_VERSION)"
        )
    if reason == "WRONG_VERSION_NUMBER":
        return "the upstream does not speak TLS on this port (a ws:// endpoint?)"
    if "CERTIFICATE" in reason and "ALERT" in reason:
        return f"the upstream rejected the client certificate ({_ssl_text(exc)})"
    return _ssl_text(exc) if reason else str(exc)
