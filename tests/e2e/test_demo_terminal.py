"""``make demo`` in a real terminal, stopped with Ctrl-C typed into it (tmux ``send-keys C-c``).

The terminal delivers SIGINT to the foreground process group (make and the demo); the demo's
children run in their own sessions and are stopped by the demo. Once the shell's prompt is
back, no process the demo started is left, and the demo has printed its summary paragraph.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sportrix_devkit.waiting import wait_until

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
PROMPT = "demo-test-ready$ "
RECORD = re.compile(r"^\s*\d+ (snapshot|update) +seq=\d+ .* lag=\d+ms$", re.MULTILINE)
SUMMARY = re.compile(
    r"demo: stopped in (?P<seconds>[\d.]+) s\. (?P<records>[\d,]+) records decoded from the data "
    r"topic \([\d,]+ produced by the ingester\), (?P<dlq>[\d,]+) dead letters; lag from the "
    r"match update to this terminal p50 (?P<p50>[\d,]+) ms, p99 (?P<p99>[\d,]+) ms\. "
    r"Logs: (?P<logs>[^ ]+, [^ ]+, [^ ]+)\."
)


class Terminal:
    """A tmux server of the test's own (its own socket) with one bash in a wide window."""

    def __init__(self, tmux: str, socket: Path) -> None:
        self.base = [tmux, "-S", str(socket)]

    def tmux(self, *args: str) -> str:
        done = subprocess.run(
            [*self.base, *args], capture_output=True, text=True, timeout=30, check=True
        )
        return done.stdout

    def screen(self) -> str:
        """The pane's text, history included, wrapped lines joined."""
        return self.tmux("capture-pane", "-p", "-J", "-S", "-2000", "-t", "demo")

    def wait_for(self, what: str, found: Callable[[str], object], timeout: float) -> str:
        """The screen once ``found(screen)`` is truthy; fails after ``timeout`` seconds."""

        def screen_showing() -> str | None:
            text = self.screen()
            return text if found(text) else None

        return wait_until(
            screen_showing, what, timeout, interval=0.3, details=lambda: self.screen()[-4000:]
        )


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Terminal]:
    tmux = shutil.which("tmux")
    if tmux is None:
        pytest.fail("tmux not found: scripts/install-tools installs it (Debian's tmux)")
    socket = Path("/tmp") / f"demo-test-{uuid.uuid4().hex[:12]}.sock"  # short: sun_path limit
    term = Terminal(tmux, socket)
    subprocess.run(
        [*term.base, "new-session", "-d", "-s", "demo", "-x", "220", "-y", "50", "-c", str(REPO),
         "bash --norc --noprofile"],
        check=True, timeout=30,
    )  # fmt: skip
    term.tmux("send-keys", "-t", "demo", f"PS1='{PROMPT}'", "Enter")
    try:
        yield term
    finally:
        # A failed test: Ctrl-C, then closing the terminal (SIGHUP) still stops the demo.
        subprocess.run([*term.base, "send-keys", "-t", "demo", "C-c"], check=False, timeout=30)
        subprocess.run([*term.base, "kill-server"], check=False, timeout=30)
        socket.unlink(missing_ok=True)


def descendants(pid: int) -> dict[int, str]:
    """Every process below ``pid`` (by parent links in /proc), with its command line."""
    parents: dict[int, int] = {}
    commands: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            commands[int(entry.name)] = (entry / "cmdline").read_text().replace("\0", " ")
        except OSError:
            continue
        parents[int(entry.name)] = int(stat[stat.rindex(")") + 2 :].split()[1])
    found: dict[int, str] = {}
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        for child, its_parent in parents.items():
            if its_parent == parent and child not in found:
                found[child] = commands.get(child, "")
                frontier.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def test_ctrl_c_in_a_terminal_stops_make_demo_and_prints_a_summary(
    terminal: Terminal, tmp_path: Path
) -> None:
    terminal.wait_for("prompt", lambda text: PROMPT.strip() in text, 30)
    workdir = tmp_path / "demo"
    terminal.tmux(
        "send-keys", "-t", "demo", f"make demo DEMO_ARGS='--workdir {workdir} --speed 20'", "Enter"
    )
    terminal.wait_for("decoded record", RECORD.search, 240)
    shell = int(terminal.tmux("display-message", "-p", "-t", "demo", "#{pane_pid}"))
    started = descendants(shell)
    commands = " | ".join(started.values())
    assert "kafka.Kafka" in commands, commands  # the broker
    assert " simulate " in commands, commands
    assert "ingester.app" in commands, commands  # the daemon (see demo._DAEMON_ONCE_TOLD)

    pressed = time.monotonic()
    terminal.tmux("send-keys", "-t", "demo", "C-c")
    text = terminal.wait_for(
        "summary and prompt",
        lambda text: SUMMARY.search(text) and text.rstrip().endswith(PROMPT.strip()),
        60,
    )
    left = {pid: cmd for pid, cmd in started.items() if alive(pid)}
    took = time.monotonic() - pressed
    assert not left, f"still running after the prompt came back: {left}"

    summary = SUMMARY.search(text)
    assert summary is not None
    print(f"Ctrl-C to prompt: {took:.1f} s; {summary[0]}")
    assert int(summary["records"].replace(",", "")) >= 1
    assert int(summary["p99"].replace(",", "")) >= int(summary["p50"].replace(",", ""))
    logs = [Path(p) for p in summary["logs"].split(", ")]
    assert [p.name for p in logs] == ["ingester.log", "simulator.log", "broker.log"]
    assert all(p.is_relative_to(workdir) and p.is_file() for p in logs), logs
