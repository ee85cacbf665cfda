"""The real container image, built and run without a container engine.

* :func:`build` runs ``scripts/build-image --debian-base`` with buildah (even where a Docker
  engine answers: the image is then read and run through buildah's storage) and turns a failed
  build into one clear message: the step that failed and the last lines it printed.
* :class:`ImageConfig` is the built image's own configuration (``buildah inspect``).
* :class:`Pod` is what the rendered Helm chart gives the ingester's container: user, groups,
  read-only root, env (the ConfigMap it loads plus its own entries), the emptyDirs and Secret
  files it mounts, its port and its probes' paths.
* :class:`Rootfs` is a buildah working container of the image, mounted; :meth:`Rootfs.start`
  runs a command in it with a :class:`Pod`'s settings through ``sandbox.py`` (private mount
  and PID namespaces, so no mount outlives the command and the command is PID 1).
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO / "scripts" / "build-image"
SANDBOX = Path(__file__).with_name("sandbox.py")
#: A cold build makes the Debian base first (minutes); a warm one is served from caches.
BUILD_TIMEOUT_S = 1200


class ImageBuildError(AssertionError):
    """The image did not build; the message says at which step and why."""


def buildah(*args: str, timeout: float = 120) -> str:
    """``buildah ARGS``; its stdout, or an AssertionError with its stderr."""
    done = subprocess.run(
        ["buildah", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        raise AssertionError(f"buildah {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def failure_message(returncode: int, log: str, log_path: Path) -> str:
    """One clear message for a failed build: the failing step and the output's last lines."""
    steps = re.findall(r"^(?:\[\d+/\d+\] )?STEP \d+/\d+: .*$", log, re.MULTILINE)
    step = steps[-1] if steps else "(before the first step)"
    tail = "\n".join(f"    {line}" for line in log.strip().splitlines()[-12:])
    return (
        f"the image did not build (exit {returncode}); the failing step:\n    {step}\n"
        f"its last lines:\n{tail}\n(full log: {log_path})"
    )


def build(dockerfile: Path, tag: str, workdir: Path) -> str:
    """Build ``dockerfile`` (context: the repository) on the Debian base; the image id."""
    iidfile = workdir / f"iid-{uuid.uuid4().hex[:8]}"
    log_path = workdir / f"build-{iidfile.name[4:]}.log"
    with log_path.open("w") as log:
        done = subprocess.run(
            [str(BUILD_SCRIPT), "--debian-base", "-t", tag, "-f", str(dockerfile), "--",
             "--iidfile", str(iidfile)],
            stdout=log, stderr=subprocess.STDOUT, timeout=BUILD_TIMEOUT_S, check=False,
            env={**os.environ, "IMAGE_BUILDER": "buildah"},
        )  # fmt: skip
    if done.returncode != 0:
        text = log_path.read_text(errors="replace")
        raise ImageBuildError(failure_message(done.returncode, text, log_path))
    return iidfile.read_text().strip().removeprefix("sha256:")


@dataclass(frozen=True)
class ImageConfig:
    """The parts of the image's configuration a runtime uses, and its metadata."""

    entrypoint: list[str]
    cmd: list[str]
    env: dict[str, str]
    user: str
    workdir: str
    labels: dict[str, str]
    healthcheck: list[str] | None
    exposed_ports: list[str]

    @classmethod
    def of(cls, image: str) -> ImageConfig:
        """``buildah inspect`` of ``image`` (Docker format, which keeps HEALTHCHECK)."""
        config = json.loads(buildah("inspect", "--type", "image", image))["Docker"]["config"]
        health = config.get("Healthcheck") or {}
        return cls(
            entrypoint=config.get("Entrypoint") or [],
            cmd=config.get("Cmd") or [],
            env=dict(item.split("=", 1) for item in config.get("Env") or []),
            user=config.get("User") or "",
            workdir=config.get("WorkingDir") or "/",
            labels=config.get("Labels") or {},
            healthcheck=health.get("Test"),
            exposed_ports=sorted(config.get("ExposedPorts") or {}),
        )


@dataclass(frozen=True)
class Pod:
    """The ingester container's settings in rendered manifests, as a kubelet would apply them."""

    name: str
    uid: int
    gid: int
    groups: list[int]
    read_only_root: bool
    no_new_privileges: bool
    command: list[str] | None
    args: list[str] | None
    env: dict[str, str]
    port: int
    probes: dict[str, str]  # startupProbe/livenessProbe/readinessProbe -> HTTP path
    empty_dirs: dict[str, str]  # mount path -> tmpfs size
    files: dict[str, dict[str, bytes]] = field(default_factory=dict)  # read-only mounts
    file_mode: int = 0o644

    @classmethod
    def of(cls, manifests: list[dict[str, Any]], pod_name: str) -> Pod:
        """The Deployment's one container, with the ConfigMaps and Secrets it refers to."""
        by_kind: dict[tuple[str, str], dict[str, Any]] = {
            (d["kind"], d["metadata"]["name"]): d for d in manifests
        }
        (deployment,) = [d for d in manifests if d["kind"] == "Deployment"]
        spec = deployment["spec"]["template"]["spec"]
        (container,) = spec["containers"]
        security = {**spec.get("securityContext", {}), **container.get("securityContext", {})}
        fs_group = spec.get("securityContext", {}).get("fsGroup")

        env: dict[str, str] = {}
        for source in container.get("envFrom", []):
            config_map = by_kind[("ConfigMap", source["configMapRef"]["name"])]
            env.update(config_map.get("data", {}))
        for item in container.get("env", []):
            if "value" in item:
                env[item["name"]] = item["value"]
            elif item.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.name":
                env[item["name"]] = pod_name
            else:
                raise AssertionError(f"env {item['name']}: no way to resolve {item}")

        ports = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}
        (port,) = set(ports.values())
        probes = {}
        for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
            if kind in container:
                get = container[kind]["httpGet"]
                assert ports.get(get["port"], get["port"]) == port, f"{kind} on another port"
                probes[kind] = get["path"]

        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        empty_dirs: dict[str, str] = {}
        files: dict[str, dict[str, bytes]] = {}
        mode = 0o644
        for mount in container.get("volumeMounts", []):
            volume = volumes[mount["name"]]
            if "emptyDir" in volume:
                assert not mount.get("readOnly"), f"{mount['mountPath']}: read-only emptyDir"
                empty_dirs[mount["mountPath"]] = volume["emptyDir"].get("sizeLimit", "64Mi")
            elif "secret" in volume:
                secret = by_kind[("Secret", volume["secret"]["secretName"])]
                data = {k: base64.b64decode(v) for k, v in secret.get("data", {}).items()}
                data |= {k: v.encode() for k, v in secret.get("stringData", {}).items()}
                items = volume["secret"].get("items") or [{"key": k, "path": k} for k in data]
                files[mount["mountPath"]] = {i["path"]: data[i["key"]] for i in items}
                mode = volume["secret"].get("defaultMode", 0o644)
            else:
                raise AssertionError(f"volume {mount['name']}: kind not supported here")
        return cls(
            name=pod_name,
            uid=security["runAsUser"],
            gid=security["runAsGroup"],
            groups=[fs_group] if fs_group is not None else [],
            read_only_root=bool(security.get("readOnlyRootFilesystem")),
            no_new_privileges=security.get("allowPrivilegeEscalation") is False,
            command=container.get("command"),
            args=container.get("args"),
            env=env,
            port=port,
            probes=probes,
            empty_dirs=empty_dirs,
            files=files,
            file_mode=mode,
        )

    def argv(self, image: ImageConfig) -> list[str]:
        """Kubernetes' rule: ``command`` replaces ENTRYPOINT (and drops CMD), ``args`` CMD."""
        if self.command is not None:
            return [*self.command, *(self.args or [])]
        return [*image.entrypoint, *(self.args if self.args is not None else image.cmd)]


@dataclass
class Running:
    """A command started by :meth:`Rootfs.start`: ``unshare`` and, inside, the command."""

    proc: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        """What the command printed so far."""
        return self.log.read_text(errors="replace")

    def pid(self) -> int:
        """The command's process id on the host (the child of ``unshare``)."""
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text()
                except OSError:
                    continue
                if int(stat.rpartition(")")[2].split()[1]) == self.proc.pid:
                    return int(entry.name)
        raise AssertionError(f"the command has exited:\n{self.output()[-3000:]}")

    def terminate(self) -> None:
        """SIGTERM to the command itself, as the kubelet sends it to PID 1 of the container."""
        os.kill(self.pid(), signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL everything (``unshare --kill-child`` takes the whole PID namespace down)."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)


class Rootfs:
    """A working container of ``image``, mounted; removed (and unmounted) by :meth:`close`."""

    def __init__(self, image: str, workdir: Path) -> None:
        self.image = image
        self.workdir = workdir
        self.name = f"sportrix-test-{uuid.uuid4().hex[:12]}"
        buildah("from", "--pull-never", "--name", self.name, image)
        self.path = Path(buildah("mount", self.name).strip())
        self.config = ImageConfig.of(image)
        self._count = 0

    def close(self) -> None:
        """Unmount and remove the working container."""
        try:
            buildah("umount", self.name)
        finally:
            buildah("rm", self.name)

    def home_of(self, uid: int) -> str:
        """The home directory of ``uid`` in the image's /etc/passwd (``/`` when none)."""
        for line in (self.path / "etc" / "passwd").read_text().splitlines():
            parts = line.split(":")
            if len(parts) > 5 and parts[2] == str(uid):
                return parts[5]
        return "/"

    def start(self, pod: Pod, argv: list[str] | None = None) -> Running:
        """Run ``argv`` (default: the pod's) with the pod's user, mounts and environment."""
        self._count += 1
        files_root = self.workdir / f"{self.name}-files-{self._count}"
        binds = {}
        for path, content in pod.files.items():
            # As the kubelet writes a Secret volume: the files owned by root, group fsGroup.
            source = files_root / path.strip("/").replace("/", "_")
            source.mkdir(parents=True)
            for name, data in content.items():
                target = source / name
                target.write_bytes(data)
                os.chown(target, 0, pod.groups[0] if pod.groups else 0)
                target.chmod(pod.file_mode)
            binds[path] = str(source)
        for path in [*pod.empty_dirs, *binds]:  # mount points, made before the root is sealed
            (self.path / path.lstrip("/")).mkdir(parents=True, exist_ok=True)
        env = {
            **self.config.env,
            "HOSTNAME": pod.name,
            "HOME": self.home_of(pod.uid),
            **pod.env,
        }
        spec = {
            "root": str(self.path),
            "read_only": pod.read_only_root,
            "tmpfs": {path: size.replace("Mi", "m") for path, size in pod.empty_dirs.items()},
            "binds": binds,
            "uid": pod.uid,
            "gid": pod.gid,
            "groups": pod.groups,
            "no_new_privileges": pod.no_new_privileges,
            "workdir": self.config.workdir,
            "argv": argv if argv is not None else pod.argv(self.config),
            "env": env,
        }
        log = self.workdir / f"{self.name}-run-{self._count}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                ["unshare", "--mount", "--propagation", "private", "--pid", "--fork",
                 "--kill-child", "--", sys.executable, str(SANDBOX), json.dumps(spec)],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )  # fmt: skip
        return Running(proc, log)

    def run(self, pod: Pod, argv: list[str], timeout: float = 60) -> tuple[int, str]:
        """Run ``argv`` to its end; exit code and output."""
        running = self.start(pod, argv)
        try:
            code = running.proc.wait(timeout=timeout)
        finally:
            running.kill()
        return code, running.output()
