"""Build the consumer examples of ``examples/`` once, and again only when their sources change.

Each build is keyed by a digest of its inputs (sources, build file, ``schemas/*.avsc``) and
kept under the git-ignored ``.cache/examples/``: a warm run starts neither Maven nor the Go
compiler. Dependencies come from the per-machine caches (``~/.m2``, Go's module cache). A
missing ``java``, ``mvn`` or ``go`` fails the test that needs it; it never skips.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
SCHEMAS = REPO / "schemas"
CACHE = REPO / ".cache" / "examples"


def require(tool: str) -> str:
    """The tool's path on PATH, or a test failure saying what is missing."""
    found = shutil.which(tool)
    if found is None:
        pytest.fail(
            f"{tool} not found on PATH: the consumer examples need Java 17+, Maven and Go "
            "(docs/consuming.md)",
            pytrace=False,
        )
    return found


def digest(*inputs: Path) -> str:
    """A digest of the files (folders: every file below them) and their relative paths."""
    sha = hashlib.sha256()
    for root in inputs:
        files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
        for path in files:
            sha.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes() + b"\0")
    return sha.hexdigest()[:16]


@contextlib.contextmanager
def build_lock(name: str) -> Iterator[None]:
    """Hold ``.cache/examples/<name>.lock``: test workers running in parallel (pytest-xdist)
    build one at a time, and the later ones find the build done."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def run_build(command: list[str], cwd: Path, what: str) -> None:
    """Run a build command; fail the test with the end of its output if it fails."""
    done = subprocess.run(
        command, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-30:])
        pytest.fail(f"building {what} failed (exit {done.returncode}):\n{tail}", pytrace=False)


@dataclass(frozen=True)
class JavaBuild:
    """The compiled Java examples: ``command(main_class, *args)`` runs one of them."""

    java: str
    classpath: str

    def command(self, main_class: str, *args: str) -> list[str]:
        """The command line running ``com.sportrix.examples.<main_class>``."""
        return [self.java, "-cp", self.classpath, f"com.sportrix.examples.{main_class}", *args]


def build_java() -> JavaBuild:
    """``examples/java`` compiled (Avro classes generated from ``schemas/``), with its classpath."""
    java, mvn = require("java"), require("mvn")
    project = EXAMPLES / "java"
    key = digest(project / "pom.xml", project / "src", *sorted(SCHEMAS.glob("*.avsc")))
    out = CACHE / "java"
    classes = out / "target" / "classes"
    classpath_file = out / f"classpath-{key}.txt"
    with build_lock("java"):
        if not (classpath_file.is_file() and classes.is_dir()):
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir(parents=True)
            run_build(
                [
                    mvn, "-q", "-B", "compile", "dependency:build-classpath",
                    f"-Dexamples.build.dir={out / 'target'}",
                    f"-Dmdep.outputFile={classpath_file}",
                ],
                project,
                "examples/java",
            )  # fmt: skip
    return JavaBuild(java, f"{classes}:{classpath_file.read_text().strip()}")


def build_go() -> Path:
    """The ``examples/go`` consumer binary."""
    go = require("go")
    project = EXAMPLES / "go"
    key = digest(project)
    binary = CACHE / "go" / f"live-scores-consumer-{key}"
    with build_lock("go"):
        if not binary.is_file():
            shutil.rmtree(binary.parent, ignore_errors=True)
            binary.parent.mkdir(parents=True)
            run_build([go, "build", "-o", str(binary), "."], project, "examples/go")
    return binary
