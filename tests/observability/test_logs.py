"""Logs: one event per line, JSON off a terminal and text on one, the level obeyed, secrets
never printed (tracebacks included)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Literal

import pytest

from ingester.observe.logs import SecretScrubber, configure_logging

SECRET = "sk_live_Zr8w3Kq1Lm0P"


class Stream(io.StringIO):
    """A stderr stand-in that is, or is not, a terminal."""

    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


@pytest.fixture(autouse=True)
def _restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def emit(
    monkeypatch: pytest.MonkeyPatch,
    tty: bool,
    log_format: Literal["auto", "json", "text"] = "auto",
    level: str = "INFO",
) -> list[str]:
    stream = Stream(tty)
    monkeypatch.setattr("sys.stderr", stream)
    scrubber = SecretScrubber()
    scrubber.add(SECRET)
    configure_logging(level, log_format, scrubber)
    log = logging.getLogger("ingester.test")
    log.debug("debug detail")
    log.warning("match %d refused: key %s rejected", 41282, SECRET)
    try:
        raise RuntimeError(f"connect failed for ws://h/v1/stream?key={SECRET}")
    except RuntimeError:
        log.exception("connection 1 failed")
    return stream.getvalue().splitlines()


def test_off_a_terminal_auto_is_one_json_event_per_line(monkeypatch: pytest.MonkeyPatch) -> None:
    lines = emit(monkeypatch, tty=False)
    events = [json.loads(line) for line in lines]  # the traceback stays inside its event
    assert len(events) == 2
    assert {"ts", "level", "logger", "message"} <= events[0].keys()
    assert events[0]["level"] == "warning"
    assert events[0]["logger"] == "ingester.test"
    assert "41282" in events[0]["message"]
    assert "RuntimeError" in events[1]["exception"]


def test_on_a_terminal_auto_is_readable_text(monkeypatch: pytest.MonkeyPatch) -> None:
    lines = emit(monkeypatch, tty=True)
    assert "WARNING" in lines[0]
    assert "ingester.test: match 41282 refused" in lines[0]
    with pytest.raises(json.JSONDecodeError):
        json.loads(lines[0])


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_an_explicit_format_wins_over_the_terminal(
    monkeypatch: pytest.MonkeyPatch, log_format: Literal["json", "text"]
) -> None:
    # json on a terminal, text off one: the setting decides, not the terminal
    first = emit(monkeypatch, tty=log_format == "json", log_format=log_format)[0]
    assert first.startswith("{") == (log_format == "json")


@pytest.mark.parametrize("tty", [False, True])
def test_the_level_is_obeyed_and_secrets_never_appear(
    monkeypatch: pytest.MonkeyPatch, tty: bool
) -> None:
    quiet = "\n".join(emit(monkeypatch, tty=tty))
    assert "debug detail" not in quiet
    assert SECRET not in quiet
    assert "***" in quiet
    verbose = "\n".join(emit(monkeypatch, tty=tty, level="DEBUG"))
    assert "debug detail" in verbose
    assert SECRET not in verbose


def test_the_password_of_a_url_is_registered_as_a_secret() -> None:
    scrubber = SecretScrubber()
    scrubber.add_url("https://ingester:p%40ss-w0rd@registry.example:8081/sub")
    scrubber.add_url("https://registry.example:8081")  # no credentials: nothing registered
    scrubber.add_url(None)
    line = "GET https://ingester:p%40ss-w0rd@registry.example:8081 (password p@ss-w0rd)"
    assert scrubber.scrub(line) == "GET https://ingester:***@registry.example:8081 (password ***)"


def test_a_secret_that_json_escapes_never_appears_in_json_logs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A password with a quote or a backslash is escaped in a JSON line; the event, decoded,
    still holds no secret."""
    secret = 'pa"ss\\w0rd-9'
    stream = Stream(tty=False)
    monkeypatch.setattr("sys.stderr", stream)
    scrubber = SecretScrubber()
    scrubber.add(secret)
    configure_logging("INFO", "json", scrubber)
    logging.getLogger("ingester.test").warning("SASL failed with password %s", secret)
    event = json.loads(stream.getvalue().splitlines()[0])
    assert secret not in event["message"]
    assert "***" in event["message"]


def test_an_aiokafka_message_repeated_is_logged_once_others_every_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A broker down makes aiokafka log the same line in a loop: the daemon's logging lets
    the first through and holds its repeats back; the daemon's own lines all pass."""
    stream = Stream(tty=False)
    monkeypatch.setattr("sys.stderr", stream)
    configure_logging("INFO", "json", SecretScrubber())
    for _ in range(3):
        logging.getLogger("aiokafka.conn").warning("Unable connect to node with id 1")
        logging.getLogger("ingester.test").warning("connection 0: timeout")
    logging.getLogger("aiokafka.conn").warning("Unable connect to node with id 2")
    messages = [json.loads(line)["message"] for line in stream.getvalue().splitlines()]
    assert messages == [
        "Unable connect to node with id 1",
        "connection 0: timeout",
        "connection 0: timeout",
        "connection 0: timeout",
        "Unable connect to node with id 2",
    ]
