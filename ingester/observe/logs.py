"""Logging: one event per line, JSON off a terminal, text on one; secrets scrubbed.

Every handler carries a :class:`SecretScrubber`, which replaces any registered secret
(the API key, the SASL password, the schema registry's and the proxy's passwords) by ``***``
in the final line, tracebacks included, whatever code produced the message. The HTTP server passes
``/readyz``, ``/healthz`` and ``/status`` through the same scrubber.
"""

from __future__ import annotations

import logging
import sys
import time
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
    """Send every logger's records to stderr through one scrubbing formatter, an aiokafka
    message's repeats held back (:class:`_LibraryRepeats`)."""
    use_json = log_format == "json" or (log_format == "auto" and not sys.stderr.isatty())
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonFormatter(scrubber) if use_json else _TextFormatter(scrubber))
    handler.addFilter(_LibraryRepeats())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Library chatter at INFO is noise for operators; their warnings still show.
    for name in ("aiokafka", "websockets"):
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))


class _LibraryRepeats(logging.Filter):
    """Lets an aiokafka message through once per ``window`` seconds, not once per retry.

    While a broker is down, aiokafka logs "Unable connect to node ..." and "Unable to update
    metadata ..." in a loop with no backoff (thousands of lines a second); with a wrong
    password or an untrusted CA it logs the same refusal on every attempt. The first line
    names the cause; its repeats say nothing new.
    """

    def __init__(self, window: float = 300.0) -> None:
        super().__init__()
        self._window = window
        self._last: dict[tuple[str, int, str], float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("aiokafka"):
            return True
        key = (record.name, record.levelno, record.getMessage())
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self._window:
            return False
        if len(self._last) > 1000:
            self._last.clear()
        self._last[key] = now
        return True
