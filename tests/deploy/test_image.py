"""The real image: built from the Dockerfile, run with the settings of the rendered Helm chart.

``scripts/build-image --debian-base`` builds the project's Dockerfile (buildah here, no Docker
engine) on a stand-in for ``PYTHON_IMAGE`` made from Debian packages once per machine. The
daemon then runs from the image's root file system with what ``helm template`` gives the pod:
its uid/gid and fsGroup, a read-only root with only the chart's emptyDirs writable, its Secret
as read-only files, its ConfigMap and env as the environment, its port; the probes' paths must
answer, records must reach the topic (simulator upstream, the session's real broker), and
SIGTERM to PID 1 must end it with exit 0. The image's own facts are read from the image.
"""

from __future__ import annotations

import json
import re
import subprocess
import textwrap
import urllib.error
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ingester import __version__
from sportrix_devkit.waiting import free_port, wait_until
from tests.conftest import TopicFactory
from tests.e2e.harness import TEST_KEY, Simulator, TopicReader, add_matches, http_get

from .conftest import Helm
from .image import REPO, ImageBuildError, Pod, Rootfs, build, buildah

# A cold run makes the Debian base (minutes) before the first test; a warm one takes seconds.
# One worker runs the module, so the image is built once per run.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800), pytest.mark.xdist_group("image")]

KUBE_VERSION = ("--kube-version", "1.29.0")
POD_NAME = "ingest-sportrix-ingester-7d9c8b5f4-x2x7q"
TAG = "localhost/sportrix-ingester:test"


def render(helm: Helm, values: dict[str, Any]) -> list[dict[str, Any]]:
    """The chart's manifests for ``values``."""
    return helm.render(values, *KUBE_VERSION)


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The Dockerfile built into an image; its id (used from here on, so a concurrent build
    that moves the tag changes nothing). The tag stays: it keeps the layer cache warm."""
    try:
        return build(REPO / "Dockerfile", TAG, tmp_path_factory.mktemp("image-build"))
    except ImageBuildError as exc:
        failure = str(exc)
    pytest.fail(failure, pytrace=False)


@pytest.fixture(scope="module")
def rootfs(image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rootfs]:
    """A mounted working container of the image; afterwards nothing of it stays mounted."""
    fs = Rootfs(image, tmp_path_factory.mktemp("image-run"))
    yield fs
    fs.close()
    mounts = Path("/proc/mounts").read_text()
    assert str(fs.path) not in mounts, f"still mounted after the tests: {fs.path}"
    assert fs.name not in buildah("containers", "--format", "{{.ContainerName}}")


@pytest.fixture(scope="module")
def pod(helm: Helm) -> Pod:
    """The pod the chart renders with only the required values (and an inline API key)."""
    values = {
        "kafka": {"bootstrapServers": "127.0.0.1:9"},
        "credentials": {"apiKey": "not-a-real-key"},
    }
    return Pod.of(render(helm, values), POD_NAME)


# --------------------------------------------------------------------------- the image's facts


def test_image_configuration(rootfs: Rootfs, pod: Pod) -> None:
    """Entrypoint and cmd in exec form, the chart's numeric user, port, labels, HEALTHCHECK."""
    config = rootfs.config
    assert config.entrypoint == ["sportrix-ingester"]
    assert config.cmd == ["run"]
    assert pod.argv(config) == ["sportrix-ingester", "run"]
    assert config.user == f"{pod.uid}:{pod.gid}", "the image's USER is not the chart's runAsUser"
    assert config.exposed_ports == [f"{pod.port}/tcp"]
    assert config.env["PYTHONUNBUFFERED"] == "1"
    labels = config.labels
    assert labels["org.opencontainers.image.title"] == "sportrix-ingester"
    assert labels["org.opencontainers.image.version"] == __version__
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=False
    )
    if head.returncode == 0:  # a git checkout (CI's is one): the label names its commit
        assert labels["org.opencontainers.image.revision"] == head.stdout.strip()
        created = labels["org.opencontainers.image.created"]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", created), created
    assert config.healthcheck is not None, "HEALTHCHECK lost (an OCI-format build drops it)"
    assert config.healthcheck[0] == "CMD"
    assert "/healthz" in " ".join(config.healthcheck)


def test_no_installer_or_compiler(rootfs: Rootfs, pod: Pod) -> None:
    """Neither the venv's nor the base's Python can import pip, setuptools or wheel; no
    compiler on the image's PATH."""
    probe = (
        "import importlib.util, json, os, shutil, sys; print(json.dumps({"
        "'modules': [m for m in ('pip', 'setuptools', 'wheel') if importlib.util.find_spec(m)],"
        "'tools': [t for t in ('pip', 'pip3', 'gcc', 'cc', 'c++', 'g++', 'clang', 'make') "
        "if shutil.which(t)]}))"
    )
    for python in ("python", "/usr/local/bin/python"):
        code, output = rootfs.run(pod, [python, "-c", probe])
        assert code == 0, output
        assert output.strip().splitlines()[-1] == '{"modules": [], "tools": []}', (python, output)


def test_help_with_an_unwritable_home(rootfs: Rootfs, pod: Pod) -> None:
    """``sportrix-ingester --help`` as the chart's user, whose home does not exist (and cannot
    be made: see the next test)."""
    assert rootfs.home_of(pod.uid) == "/nonexistent"
    code, output = rootfs.run(pod, [*rootfs.config.entrypoint, "--help"])
    assert code == 0, output
    assert "usage: sportrix-ingester" in output


def test_the_image_carries_the_daemon_alone(rootfs: Rootfs, pod: Pod) -> None:
    """No development tooling: neither the devkit's package nor its distribution is installed,
    and its sub-commands answer with the one-line hint (exit 2)."""
    probe = (
        "import importlib.metadata as m, importlib.util as u, json; print(json.dumps(["
        "u.find_spec('sportrix_devkit') is None,"
        "'sportrix-ingester-devkit' not in {d.metadata['Name'] for d in m.distributions()}]))"
    )
    code, output = rootfs.run(pod, ["python", "-c", probe])
    assert code == 0, output
    assert output.strip().splitlines()[-1] == "[true, true]", output
    for command in ("simulate", "bench", "demo", "kafka"):
        code, output = rootfs.run(pod, [*rootfs.config.entrypoint, command])
        assert code == 2, output
        assert output.strip().splitlines() == [
            f"sportrix-ingester: {command} comes with the devkit: "
            "pip install 'sportrix-ingester[devkit]'"
        ]


def test_only_the_charts_mounts_are_writable(rootfs: Rootfs, pod: Pod) -> None:
    """With the chart's securityContext the user can write below its emptyDirs and nowhere
    else; the root is read-only (EROFS, not merely not owned), so the home cannot be made."""
    assert pod.read_only_root
    assert pod.uid != 0
    probe = textwrap.dedent(
        """
        import os
        for top, dirs, _ in os.walk("/"):
            if top in ("/proc", "/sys", "/dev"):
                dirs[:] = []
            elif os.access(top, os.W_OK):
                print("writable", top)
        for path in ("/opt/venv/written", os.environ["HOME"]):
            try:
                os.mkdir(path)
            except OSError as exc:
                print("refused", exc.strerror)
        """
    )
    code, output = rootfs.run(pod, ["python", "-c", probe])
    assert code == 0, output
    lines = output.splitlines()
    writable = {line.split(" ", 1)[1] for line in lines if line.startswith("writable ")}
    mounts = set(pod.empty_dirs)
    assert mounts, "the chart mounts no emptyDir"
    outside = sorted(
        p for p in writable if not any(p == m or p.startswith(m + "/") for m in mounts)
    )
    assert not outside, f"writable outside the chart's emptyDirs {sorted(mounts)}: {outside}"
    assert mounts <= writable, f"the chart's emptyDirs are not writable: {sorted(mounts)}"
    assert output.count("refused Read-only file system") == 2, output


# --------------------------------------------------------------------------- the daemon


def wait_for_200(url: str, running: Any, within: float) -> None:
    """Poll ``url`` until it answers 200; fail if the command exits first or at the deadline."""
    statuses = [0]

    def answered() -> bool:
        if running.proc.poll() is not None:
            pytest.fail(f"the daemon exited before {url} answered:\n{running.output()[-4000:]}")
        statuses.append(http_get(url, timeout=3)[0])
        return statuses[-1] == 200

    wait_until(
        answered,
        f"{url} to answer 200",
        within,
        interval=0.2,
        retry_on=(OSError,),
        details=lambda: f"last status {statuses[-1]}:\n{running.output()[-3000:]}",
    )


async def test_daemon_runs_from_the_image_with_the_charts_pod_settings(
    rootfs: Rootfs, helm: Helm, kafka: Any, topic_factory: TopicFactory, tmp_path: Path
) -> None:
    """The pod as rendered: probes answered, the image's HEALTHCHECK passes, records in the
    topic, SIGTERM ends it with exit 0."""
    simulator = Simulator(tmp_path)
    data_topic = topic_factory.name()
    config_topic = topic_factory.name()
    running = None
    reader = TopicReader(kafka.bootstrap_servers, data_topic)
    try:
        values = {
            "kafka": {"bootstrapServers": kafka.bootstrap_servers},
            "credentials": {"apiKey": TEST_KEY},
            "containerPort": free_port(),
            "config": {
                "SPORTRIX_URL": simulator.url,
                "INGESTER_TOPIC": data_topic,
                "INGESTER_CONFIG_TOPIC": config_topic,
                "INGESTER_DLQ_TOPIC": topic_factory.name(),
                "INGESTER_GROUP_ID": topic_factory.name(),
                "INGESTER_CONFIG_PARTITIONS": 1,
                "INGESTER_REPLICATION_FACTOR": 1,
                "INGESTER_FLUSH_TIMEOUT": 5,
            },
        }
        pod = Pod.of(render(helm, values), POD_NAME)
        assert pod.env["SPORTRIX_API_KEY_FILE"].startswith(tuple(pod.files))
        assert "SPORTRIX_API_KEY" not in pod.env
        running = rootfs.start(pod)
        base = f"http://127.0.0.1:{pod.port}"
        for _kind, path in sorted(pod.probes.items()):
            wait_for_200(base + path, running, 90)

        status, body = http_get(base + "/status")
        assert status == 200
        assert json.loads(body)["instance_id"] == POD_NAME  # the downward-API env entry

        assert rootfs.config.healthcheck is not None
        code, output = rootfs.run(pod, rootfs.config.healthcheck[1:])
        assert code == 0, f"the image's HEALTHCHECK failed while the daemon runs:\n{output}"

        (match_id, *_) = simulator.matches("soccer")
        await add_matches(kafka.bootstrap_servers, config_topic, [match_id])
        records = await reader.poll_until(
            lambda rs: any(r.key == str(match_id).encode() and r.decoded for r in rs),
            f"a decoded record of match {match_id}",
            deadline=90,
        )
        assert any(r.decoded and r.decoded.get("match_id") == match_id for r in records), [
            r.decoded for r in records[:3]
        ]

        running.terminate()
        code = running.proc.wait(timeout=float(pod.env["INGESTER_FLUSH_TIMEOUT"]) + 30)
        assert code == 0, f"exit {code} after SIGTERM:\n{running.output()[-4000:]}"
        with pytest.raises(urllib.error.URLError, match="Connection refused"):
            http_get(base + "/healthz", timeout=2)  # nothing is left listening
    finally:
        await reader.close()
        if running is not None:
            running.kill()
        simulator.stop()


# --------------------------------------------------------------------------- a broken Dockerfile


def test_a_broken_dockerfile_fails_with_a_clear_message(tmp_path: Path) -> None:
    """A Dockerfile that forgets ``COPY schemas/``: the build fails, naming the step and cause."""
    dockerfile = tmp_path / "Dockerfile"
    text = (REPO / "Dockerfile").read_text(encoding="utf-8")
    broken = "\n".join(line for line in text.splitlines() if not line.startswith("COPY schemas/"))
    assert broken != text
    dockerfile.write_text(broken, encoding="utf-8")
    with pytest.raises(ImageBuildError) as failed:
        build(dockerfile, f"localhost/sportrix-ingester:broken-{uuid.uuid4().hex[:8]}", tmp_path)
    message = str(failed.value)
    assert "the failing step:" in message
    assert "RUN python -m build" in message
    assert "schemas" in message.split("its last lines:", 1)[1]
