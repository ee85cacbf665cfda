"""Fixtures for the deployment tests: the repository root, the Helm binary and the chart.

``helm`` is looked up as ``.cache/bin/helm`` under the repository root (``make test`` builds it
there once with ``go install``), then on ``PATH``. When it is missing the tests that need it
FAIL with the command that installs it: a missing tool must never turn into a green run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "sportrix-ingester"
HELM_INSTALL = (
    "GOBIN=$(pwd)/.cache/bin go install helm.sh/helm/v3/cmd/helm@v3.22.0  "
    "(or scripts/install-tools)"
)


def find_helm() -> str | None:
    """``.cache/bin/helm`` under the repository root, else ``helm`` on ``PATH``."""
    cached = REPO / ".cache" / "bin" / "helm"
    if cached.is_file() and os.access(cached, os.X_OK):
        return str(cached)
    return shutil.which("helm")


@dataclass(frozen=True)
class Result:
    """One helm invocation: exit code and output."""

    returncode: int
    stdout: str
    stderr: str


class Helm:
    """Runs the chart through ``helm`` with values written to a file (never on the command line)."""

    def __init__(self, binary: str, workdir: Path) -> None:
        self.binary = binary
        self.workdir = workdir
        self._count = 0
        # Isolate helm from any user configuration or repository cache on the machine.
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(workdir),
            "HELM_CACHE_HOME": str(workdir / "cache"),
            "HELM_CONFIG_HOME": str(workdir / "config"),
            "HELM_DATA_HOME": str(workdir / "data"),
        }

    def run(self, *args: str, values: dict[str, Any] | None = None) -> Result:
        """``helm ARGS [-f values.yaml]``."""
        command = [self.binary, *args]
        if values is not None:
            self._count += 1
            path = self.workdir / f"values-{self._count}.yaml"
            path.write_text(yaml.safe_dump(values), encoding="utf-8")
            command += ["-f", str(path)]
        done = subprocess.run(
            command, capture_output=True, text=True, env=self.env, timeout=120, check=False
        )
        return Result(done.returncode, done.stdout, done.stderr)

    def template(self, values: dict[str, Any] | None = None, *extra: str) -> Result:
        """``helm template`` of the chart, release ``ingest`` in namespace ``live``."""
        return self.run(
            "template", "ingest", str(CHART), "--namespace", "live", *extra, values=values
        )

    def render(self, values: dict[str, Any] | None = None, *extra: str) -> list[dict[str, Any]]:
        """The rendered manifests; fails the test with helm's message when rendering fails."""
        result = self.template(values, *extra)
        if result.returncode != 0:
            pytest.fail(f"helm template failed:\n{result.stderr}", pytrace=False)
        return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="session")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    """The Helm binary, or a failing test naming the command that installs it."""
    binary = find_helm()
    if binary is None:
        pytest.fail(
            "helm not found (looked for .cache/bin/helm under the repository root, then PATH); "
            f"install it with: {HELM_INSTALL}",
            pytrace=False,
        )
    return Helm(binary, tmp_path_factory.mktemp("helm"))
