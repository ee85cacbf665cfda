"""The README's run command, ``sportrix-ingester demo``, as a user runs it.

It starts its own Kafka broker (unless ``KAFKA_BOOTSTRAP_SERVERS`` names one), the simulator
and the daemon, follows soccer and cricket matches through the config topic and prints one
decoded line per record until it is stopped, and then nothing it started is left running.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from sportrix_devkit.waiting import listening, wait_until

pytestmark = pytest.mark.slow

SOCCER = re.compile(r"^\s*\d+ (snapshot|update) +seq=\d+ +.+ \d+-\d+ .+ \[\d+:\d\d \w+\]")
CRICKET = re.compile(r"^\s*\d+ (snapshot|update) +seq=\d+ +.+ \d+/\d+ \(\d+\.\d\)")
ADDRESS = re.compile(r"(?:Kafka is up at |ws://|http://)(127\.0\.0\.1):(\d+)")
#: ``python -m ingester`` with SIGINT raising KeyboardInterrupt, as under a terminal (a child
#: started without job control would inherit SIGINT ignored).
DEMO = [
    sys.executable,
    "-c",
    "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "from ingester.cli import main; sys.exit(main(sys.argv[1:]))",
]


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_demo_prints_decoded_records_and_stops_everything_it_started(
    tmp_path: Path, stop: signal.Signals
) -> None:
    out = tmp_path / "demo.out"
    external = bool(os.environ.get("KAFKA_BOOTSTRAP_SERVERS"))  # then the demo uses that one
    with out.open("wb") as sink:
        demo = subprocess.Popen(
            [*DEMO, "demo", "--workdir", str(tmp_path / "demo"), "--speed", "20"],
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:

        def both_sports_printed() -> str | None:
            text = out.read_text(errors="replace")
            lines = text.splitlines()
            if any(SOCCER.match(line) for line in lines) and any(
                CRICKET.match(line) for line in lines
            ):
                return text
            assert demo.poll() is None, f"demo exited early:\n{text[-3000:]}"
            return None

        text = wait_until(
            both_sports_printed,
            "soccer and cricket lines",
            150,
            interval=0.5,
            details=lambda: out.read_text(errors="replace")[-3000:],
        )
        addresses = {(host, int(port)) for host, port in ADDRESS.findall(text)}
        # Kafka (unless external), the simulator, the daemon
        assert len(addresses) == (2 if external else 3), text[:2000]
        demo.send_signal(stop)
        assert demo.wait(90) == 0, out.read_text(errors="replace")[-3000:]
    finally:
        if demo.poll() is None:  # a failed check: still let it stop what it started
            demo.send_signal(signal.SIGTERM)
            try:
                demo.wait(90)
            except subprocess.TimeoutExpired:
                demo.kill()
                demo.wait()
    assert "stopping the ingester, the simulator and Kafka" in out.read_text()
    left = [(host, port) for host, port in addresses if listening(port, host)]
    assert not left, f"still listening after the demo stopped: {left}"
