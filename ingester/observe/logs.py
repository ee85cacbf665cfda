"""Logging: one event per line, JSON off a terminal, text on one; secrets scrubbed.

Every handler carries a :class:`SecretScrubber`, which replaces any registered secret
(the API key, the SASL password, the schema registry's and the proxy's passwords) by ``***``
in the final line, tracebacks included, whatever code produced the message. The HTTP server passes
``/readyz``, ``/healthz`` and ``/status`` through the same scrubber.
"""

from __future__ import annotations

import logging
import sys
from base64 import b64encode
from datetime import UTC, datetime
from typing import Literal
from urllib.parse import unquote, urlsplit

import orjson

__all__ = ["SecretScrubber", "configure_logging"]

_TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


class SecretScrubber:
    """The set of secret strings that must never be printed."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()

    def add(self, secret: str | None) -> None:
        """Register ``secret`` (short strings are ignored: they would mangle normal text),
        also as a JSON string writes it (a quote or backslash escaped), for JSON output."""
        if secret and len(secret) >= 4:
            self._secrets.add(secret)
            self._secrets.add(orjson.dumps(secret).decode()[1:-1])

    def add_url(self, url: str | None) -> None:
        """Register every form in which the password of ``url``'s ``user:password@`` part
        could be printed: as written, decoded, and inside the HTTP Basic token a client
        sends with it (a proxy, a schema registry)."""
        parts = urlsplit(url) if url else None
        if parts is None or parts.password is None:
            return
        password = unquote(parts.password)
        basic = f"{unquote(parts.username or '')}:{password}".encode()
        for form in (parts.password, password, b64encode(basic).decode()):
            self.add(form)

    def scrub(self, text: str) -> str:
        """``text`` with every registered secret replaced by ``***``."""
        for secret in sorted(self._secrets, key=len, reverse=True):  # escaped forms first
            if secret in text:
                text = text.replace(secret, "***")
        return text


class _JsonFormatter(logging.Formatter):
    def __init__(self, scrubber: SecretScrubber) -> None:
        super().__init__()
        self._scrubber = scrubber

    def format(self, record: logging.LogRecord) -> str:
        event: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            event["exception"] = self.formatException(record.exc_info)
        return self._scrubber.scrub(orjson.dumps(event).decode())


class _TextFormatter(logging.Formatter):
    def __init__(self, scrubber: SecretScrubber) -> None:
        super().__init__(_TEXT_FORMAT)
        self._scrubber = scrubber

    def format(self, record: logging.LogRecord) -> str:
        return self._scrubber.scrub(super().format(record))


def configure_logging(
    level: str,
    log_format: Literal["auto", "json", "text"],
    scrubber: SecretScrubber,
) -> None:
    """Send every logger's records to stderr through one scrubbing formatter."""
    use_json = log_format == "json" or (log_format == "auto" and not sys.stderr.isatty())
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonFormatter(scrubber) if use_json else _TextFormatter(scrubber))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Library chatter at INFO is noise for operators; their warnings still show.
    for name in ("aiokafka", "websockets"):
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
