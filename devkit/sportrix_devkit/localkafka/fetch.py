"""Fetch Apache Kafka's jars from Maven Central with Maven and cache the resolved classpath.

The jars themselves live in Maven's local repository (``~/.m2``), so they are downloaded once
per machine; the resolved classpath is cached in :func:`cache_dir` so later runs do not even
start Maven. A cached classpath whose jars have gone missing is resolved again.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from importlib import resources
from pathlib import Path

__all__ = ["KAFKA_VERSION", "LocalKafkaError", "cache_dir", "classpath", "java_executable"]

#: The Apache Kafka release the local broker runs (``org.apache.kafka:kafka_2.13``).
KAFKA_VERSION = "4.1.1"


class LocalKafkaError(RuntimeError):
    """The local broker could not be fetched, started or stopped; the message says why."""


def cache_dir() -> Path:
    """Where the resolved classpath is cached.

    ``$SPORTRIX_KAFKA_CACHE`` if set, else ``$XDG_CACHE_HOME/sportrix-ingester/kafka``
    (``~/.cache/...`` by default), shared by every clone on the machine.
    """
    override = os.environ.get("SPORTRIX_KAFKA_CACHE")
    if override:
        return Path(override)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "sportrix-ingester" / "kafka"


def _pom() -> bytes:
    return resources.files("sportrix_devkit.localkafka").joinpath("pom.xml").read_bytes()


def _cache_file(pom: bytes) -> Path:
    digest = hashlib.sha256(pom).hexdigest()[:12]
    return cache_dir() / f"classpath-{KAFKA_VERSION}-{digest}.txt"


def _read_cached(path: Path) -> list[Path] | None:
    try:
        entries = [Path(p) for p in path.read_text().strip().split(os.pathsep) if p]
    except FileNotFoundError:
        return None
    if entries and all(p.is_file() for p in entries):
        return entries
    return None


def _require(tool: str, hint: str) -> str:
    found = shutil.which(tool)
    if found is None:
        raise LocalKafkaError(f"{tool} not found on PATH; {hint}")
    return found


def java_executable() -> str:
    """The ``java`` to run the broker with (``$JAVA_HOME/bin/java`` if set, else PATH)."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return str(Path(java_home) / "bin" / "java")
    return _require("java", "the local Kafka broker needs a Java 17+ runtime")


def classpath(*, refresh: bool = False) -> list[Path]:
    """The broker's classpath: every jar of ``kafka_2.13`` and its runtime dependencies.

    Resolved with ``mvn dependency:build-classpath`` on first use (downloading into ``~/.m2``)
    and cached; ``refresh=True`` resolves again. Raises :class:`LocalKafkaError` when Maven is
    missing or fails.
    """
    pom = _pom()
    cached = _cache_file(pom)
    if not refresh:
        entries = _read_cached(cached)
        if entries is not None:
            return entries
    mvn = _require("mvn", "install Maven to fetch the Kafka jars")
    cached.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="localkafka-mvn-") as tmp:
        pom_path = Path(tmp) / "pom.xml"
        pom_path.write_bytes(pom)
        out = Path(tmp) / "classpath.txt"
        cmd = [mvn, "-q", "-B", "-f", str(pom_path), "dependency:build-classpath"]
        cmd.append(f"-Dmdep.outputFile={out}")
        proc = subprocess.run(
            cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False
        )
        if proc.returncode != 0 or not out.is_file():
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-20:])
            raise LocalKafkaError(
                f"mvn could not resolve org.apache.kafka:kafka_2.13:{KAFKA_VERSION} "
                f"(exit {proc.returncode}):\n{tail}"
            )
        # A private name, then an atomic rename: parallel fetches (test workers) never see a
        # half-written file.
        staged = cached.with_suffix(f".{os.getpid()}.tmp")
        staged.write_text(out.read_text().strip() + "\n")
        staged.replace(cached)
    entries = _read_cached(cached)
    if entries is None:
        raise LocalKafkaError(f"mvn produced a classpath with missing jars: {cached}")
    return entries
