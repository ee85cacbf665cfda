"""The Dockerfile's recipe, proven without a Docker engine.

The builder stage's install steps (the ``RUN`` lines between ``# recipe: begin`` and
``# recipe: end``) are read out of the Dockerfile and run as they are, with ``/bin/sh -c``, in a
copy of exactly the files the stage ``COPY``s, with the stage's ``ENV`` (its paths moved under a
temporary directory). The resulting virtualenv is then used like the image: its console script
starts the daemon, which must refuse a bad setting with exit 2 and one line, serve ``/healthz``
against the real Kafka broker, pass the image's own ``HEALTHCHECK`` command, and stop cleanly on
SIGTERM (what the exec-form ``ENTRYPOINT`` delivers to it as PID 1).
"""

from __future__ import annotations

import json
import shlex
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from sportrix_devkit.waiting import free_port, wait_until

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"

# One worker runs the module, so the recipe's virtualenv is made once per run.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("image-recipe")]


# --------------------------------------------------------------------------- Dockerfile parsing


@dataclass
class Stage:
    """One ``FROM`` stage: its ENV, COPY sources (from the context) and recipe RUN commands."""

    name: str | None
    env: dict[str, str] = field(default_factory=dict)
    copies: list[tuple[list[str], str]] = field(default_factory=list)
    recipe: list[str] = field(default_factory=list)
    healthcheck: list[str] | None = None
    entrypoint: list[str] | None = None
    cmd: list[str] | None = None
    user: str | None = None


def _instructions(text: str) -> list[tuple[str, str, bool]]:
    """(instruction, arguments, inside the recipe markers) with continuations joined."""
    out: list[tuple[str, str, bool]] = []
    in_recipe = False
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and line.startswith("#"):
            if line == "# recipe: begin":
                in_recipe = True
            elif line == "# recipe: end":
                in_recipe = False
            continue
        if pending and (not line or line.startswith("#")):
            continue  # comment or blank line inside a continued instruction
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        if full:
            word, _, rest = full.partition(" ")
            out.append((word.upper(), rest.strip(), in_recipe))
    return out


def parse_dockerfile(path: Path = DOCKERFILE) -> list[Stage]:
    """The stages of ``path`` in order."""
    stages: list[Stage] = []
    for word, rest, in_recipe in _instructions(path.read_text(encoding="utf-8")):
        if word == "FROM":
            parts = rest.split()
            name = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else None
            stages.append(Stage(name))
            continue
        if not stages:
            continue
        stage = stages[-1]
        if word == "ENV":
            for item in shlex.split(rest):
                key, _, value = item.partition("=")
                stage.env[key] = value
        elif word == "COPY" and not rest.startswith("--from"):
            parts = shlex.split(rest)
            stage.copies.append((parts[:-1], parts[-1]))
        elif word == "RUN" and in_recipe:
            stage.recipe.append(rest)
        elif word == "HEALTHCHECK":
            stage.healthcheck = json.loads(rest[rest.index("CMD") + 3 :])
        elif word == "ENTRYPOINT":
            stage.entrypoint = json.loads(rest)
        elif word == "CMD":
            stage.cmd = json.loads(rest)
        elif word == "USER":
            stage.user = rest
    return stages


# --------------------------------------------------------------------------- the recipe, run


@dataclass(frozen=True)
class Installed:
    """The virtualenv the recipe produced, and the wheel it was installed from."""

    venv: Path
    wheel: Path
    workdir: Path

    @property
    def script(self) -> Path:
        return self.venv / "bin" / "sportrix-ingester"

    def env(self, **settings: str) -> dict[str, str]:
        """A clean environment like the image's: the venv first on PATH, no outer settings."""
        final = parse_dockerfile()[-1]
        env = {
            "PATH": f"{self.venv / 'bin'}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(self.workdir),
            "LANG": "C.UTF-8",
            "VIRTUAL_ENV": str(self.venv),
        }
        for key, value in final.env.items():
            if key not in ("PATH", "VIRTUAL_ENV"):
                env[key] = value
        env.update(settings)
        return env

    def run(
        self, argv: list[str], env: dict[str, str] | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """``argv`` in the work directory with :meth:`env` (or ``env``), output captured."""
        return subprocess.run(
            argv,
            cwd=self.workdir,
            env=self.env() if env is None else env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """Run the builder stage's recipe into a fresh virtualenv, outside Docker."""
    builder = parse_dockerfile()[0]
    assert builder.recipe, "Dockerfile: no RUN lines between '# recipe: begin' and '# recipe: end'"
    root = tmp_path_factory.mktemp("image")
    context = root / "src"  # the builder's WORKDIR, holding exactly what the stage COPYs
    context.mkdir()
    for sources, dest in builder.copies:
        for source in sources:
            src = REPO / source.rstrip("/")
            target = context / dest if dest not in ("./", ".") else context / src.name
            if src.is_dir():
                shutil.copytree(
                    src, target, ignore=shutil.ignore_patterns("__pycache__", "*.py[cod]")
                )
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, target)
    # The stage's ENV, with its absolute paths moved under the temporary root.
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",  # `python`: ours
        "HOME": str(root),
        "LANG": "C.UTF-8",
    }
    for key, value in builder.env.items():
        env[key] = str(root / value.lstrip("/")) if value.startswith("/") else value
    # The image build must not reuse a cache; here the pip cache only saves downloads.
    env.pop("PIP_NO_CACHE_DIR", None)
    for command in builder.recipe:
        done = subprocess.run(
            ["/bin/sh", "-c", command],
            cwd=context,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert done.returncode == 0, (
            f"recipe step failed ({done.returncode}): {command}\n{done.stdout}\n{done.stderr}"
        )
    wheels = sorted(Path(env["WHEEL_DIR"]).glob("*.whl"))
    assert len(wheels) == 1, f"expected one wheel, found {wheels}"
    venv = Path(env["VIRTUAL_ENV"])
    assert (venv / "bin" / "sportrix-ingester").is_file(), "the venv has no console script"
    return Installed(venv, wheels[0], root)


# --------------------------------------------------------------------------- the recipe's shape


def test_dockerfile_shape() -> None:
    """Builder and final stage on one pinned base (and the compose simulator's devkit stage
    between them); the final one copies only the venv and runs as a number."""
    text = DOCKERFILE.read_text(encoding="utf-8")
    stages = parse_dockerfile()
    assert len(stages) == 3
    builder, devkit, final = stages
    assert builder.name == "builder"
    assert devkit.name == "devkit"
    assert all(source.startswith("devkit") for sources, _ in devkit.copies for source in sources)
    assert not any("devkit" in source for sources, _ in builder.copies for source in sources)
    assert not final.copies, "the final stage must copy nothing from the build context"
    assert "COPY --from=builder /opt/venv /opt/venv" in text
    assert final.user is not None
    assert all(part.isdigit() for part in final.user.split(":")), "USER must be numeric"
    assert final.entrypoint == ["sportrix-ingester"]
    assert final.cmd == ["run"]
    assert final.env.get("PYTHONUNBUFFERED") == "1"
    assert final.healthcheck is not None
    assert "/healthz" in " ".join(final.healthcheck)
    base = next(line for line in text.splitlines() if line.startswith("ARG PYTHON_IMAGE="))
    tag = base.partition(":")[2]
    assert "slim" in tag, f"base is not a slim image: {base}"
    assert tag[0].isdigit(), f"base not pinned to a version tag: {base}"
    recipe = " ".join(builder.recipe)
    assert "--require-hashes -r requirements/runtime.txt" in recipe, "install from the lock"
    assert "--no-deps" in recipe, "the wheel must not resolve dependencies past the lock"


def test_dockerignore_lets_the_copied_files_through() -> None:
    """The allow-list .dockerignore keeps every file the builder COPYs in the context."""
    allowed = {
        line[1:].rstrip("/")
        for line in (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.startswith("!")
    }
    for sources, _ in parse_dockerfile()[0].copies:
        for source in sources:
            assert source.rstrip("/") in allowed, f".dockerignore drops {source}"
            assert (REPO / source).exists(), f"COPY source {source} is missing"


# --------------------------------------------------------------------------- the installed daemon


def test_wheel_bundles_the_schemas(installed: Installed) -> None:
    """The wheel carries every top-level schemas/*.avsc as ingester/_schemas."""
    expected = {f"ingester/_schemas/{p.name}" for p in (REPO / "schemas").glob("*.avsc")}
    assert expected
    with zipfile.ZipFile(installed.wheel) as wheel:
        names = set(wheel.namelist())
    assert expected <= names, f"missing from the wheel: {sorted(expected - names)}"


def test_the_wheel_is_the_daemon_alone(installed: Installed) -> None:
    """No development tooling in the wheel the image installs."""
    with zipfile.ZipFile(installed.wheel) as wheel:
        names = wheel.namelist()
    tops = {name.partition("/")[0] for name in names if ".dist-info/" not in name}
    assert tops == {"ingester"}
    tooling = ("simulator", "bench", "localkafka", "demo")
    assert [name for name in names if any(part in name for part in tooling)] == []


def test_the_package_comes_from_the_venv(installed: Installed) -> None:
    """The daemon imports the installed wheel, not the source tree."""
    done = installed.run(
        [str(installed.venv / "bin" / "python"), "-c", "import ingester; print(ingester.__file__)"]
    )
    assert done.returncode == 0, done.stderr
    location = Path(done.stdout.strip())
    assert location.is_relative_to(installed.venv), location


def test_help(installed: Installed) -> None:
    """``sportrix-ingester --help`` and ``run --help`` work from the venv alone."""
    for args in (["--help"], ["run", "--help"]):
        done = installed.run([str(installed.script), *args])
        assert done.returncode == 0, done.stderr
        assert "usage: sportrix-ingester" in done.stdout


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("INGESTER_HTTP_PORT", "not-a-port"),
        ("KAFKA_BOOTSTRAP_SERVERS", "no-port-here"),
        ("SPORTRIX_API_KEY_FILE", "/nonexistent/api-key"),
    ],
)
def test_bad_setting_exits_2_with_one_line(installed: Installed, variable: str, value: str) -> None:
    """A bad setting stops start-up: exit 2 and one line on stderr naming the variable."""
    done = installed.run([str(installed.script), "run"], installed.env(**{variable: value}))
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line, got: {done.stderr!r}"
    assert variable in lines[0]


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")
    except OSError as exc:
        return 0, str(exc)


def _wait_for_200(process: subprocess.Popen[bytes], log: Path, url: str, within: float) -> None:
    """Poll ``url`` until it answers 200; fail if the daemon exits first or at the deadline."""
    answers = [(0, "")]

    def answered() -> bool:
        if process.poll() is not None:
            pytest.fail(
                f"the daemon exited with {process.returncode} before {url} answered 200:\n"
                + log.read_text(encoding="utf-8", errors="replace")[-4000:],
                pytrace=False,
            )
        answers.append(_get(url))
        return answers[-1][0] == 200

    wait_until(
        answered,
        f"{url} to answer 200",
        within,
        interval=0.25,
        details=lambda: "last answer: {} {}".format(*answers[-1]),
    )


def test_daemon_from_the_venv_serves_health_and_stops_on_sigterm(
    installed: Installed, kafka: Any
) -> None:
    """``sportrix-ingester run`` from the venv, against the real broker: healthy, ready (nothing
    to follow yet), the image's HEALTHCHECK passes, and SIGTERM ends it cleanly."""
    port = free_port()
    tag = uuid.uuid4().hex[:10]
    key_file = installed.workdir / f"api-key-{tag}"
    key_file.write_text("recipe-test-key-not-real\n", encoding="utf-8")
    flush_timeout = 5.0
    settings = {
        "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        # A closed local port: liveness must not depend on the upstream being reachable.
        "SPORTRIX_URL": f"ws://127.0.0.1:{free_port()}/v1/stream",
        "SPORTRIX_API_KEY_FILE": str(key_file),
        "INGESTER_HTTP_HOST": "127.0.0.1",
        "INGESTER_HTTP_PORT": str(port),
        "INGESTER_TOPIC": f"recipe-{tag}",
        "INGESTER_CONFIG_TOPIC": f"recipe-{tag}-config",
        "INGESTER_DLQ_TOPIC": f"recipe-{tag}-dlq",
        "INGESTER_GROUP_ID": f"recipe-{tag}",
        "INGESTER_CONFIG_PARTITIONS": "1",
        "INGESTER_REPLICATION_FACTOR": "1",
        "INGESTER_INSTANCE_ID": f"recipe-{tag}",
        "INGESTER_FLUSH_TIMEOUT": str(flush_timeout),
        "INGESTER_LOG_FORMAT": "json",
    }
    env = installed.env(**settings)
    log = installed.workdir / f"daemon-{tag}.log"
    final = parse_dockerfile()[-1]
    assert final.entrypoint is not None
    assert final.cmd is not None
    command = [str(installed.venv / "bin" / final.entrypoint[0]), *final.entrypoint[1:], *final.cmd]

    def healthcheck() -> subprocess.CompletedProcess[str]:
        """The image's HEALTHCHECK command, run in the venv with the daemon's settings."""
        assert final.healthcheck is not None
        return installed.run(final.healthcheck, env, timeout=30)

    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=installed.workdir, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_for_200(process, log, base + "/healthz", 60)
        _wait_for_200(process, log, base + "/readyz", 90)

        check = healthcheck()
        assert check.returncode == 0, f"the image's HEALTHCHECK failed: {check.stderr}"

        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=flush_timeout + 15)
        except subprocess.TimeoutExpired:
            pytest.fail("the daemon did not stop within the flush timeout + 15 s of SIGTERM")
        assert code == 0, f"exit {code} after SIGTERM:\n{log.read_text(errors='replace')[-4000:]}"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)

    # Against a stopped daemon the same HEALTHCHECK must fail.
    assert healthcheck().returncode != 0
