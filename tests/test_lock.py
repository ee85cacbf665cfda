"""The dependency lock: ``uv.lock`` and its pip exports agree with ``pyproject.toml``.

``scripts/lock --check`` is what fails CI when someone edits the dependencies and forgets
``scripts/lock``; it asks no registry (``uv lock --check --offline``).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LOCK_FILES = (
    "pyproject.toml",
    "devkit/pyproject.toml",
    "README.md",
    "uv.lock",
    "scripts/lock",
    "scripts/uv",
    "requirements",
)


def check(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(root / "scripts" / "lock"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """The files the lock is made from and of, in a scratch folder."""
    for name in LOCK_FILES:
        source, target = REPO / name, tmp_path / name
        if source.is_dir():
            shutil.copytree(source, target)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return tmp_path


def test_the_lock_matches_pyproject() -> None:
    done = check(REPO)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_locked_requirement_is_pinned_with_hashes() -> None:
    for name in ("runtime", "dev"):
        text = (REPO / "requirements" / f"{name}.txt").read_text()
        pins = [line for line in text.splitlines() if line and line[0].isalpha()]
        assert pins, name
        for pin in pins:
            assert "==" in pin, f"{name}.txt: {pin} is not pinned"
            assert pin.endswith("\\"), f"{name}.txt: {pin} has no hashes"
        assert text.count("--hash=sha256:") >= len(pins)
    dev = (REPO / "requirements" / "dev.txt").read_text()
    runtime = (REPO / "requirements" / "runtime.txt").read_text()
    assert "pytest==" in dev
    assert "pytest==" not in runtime, "the demo installs no test tools"


def test_a_dependency_added_to_pyproject_without_relocking_fails(copy: Path) -> None:
    pyproject = copy / "pyproject.toml"
    text = pyproject.read_text()
    pyproject.write_text(
        text.replace("dependencies = [\n", 'dependencies = [\n    "six>=1.16",\n', 1)
    )
    done = check(copy)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "uv.lock does not match pyproject.toml; run: scripts/lock" in done.stderr


def test_a_hand_edited_export_fails(copy: Path) -> None:
    runtime = copy / "requirements" / "runtime.txt"
    runtime.write_text(runtime.read_text().replace("orjson==", "orjson>=", 1))
    done = check(copy)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "requirements/runtime.txt is not exported from uv.lock" in done.stderr
