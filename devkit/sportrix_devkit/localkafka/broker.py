"""A real Apache Kafka broker (KRaft, one combined broker+controller node) on loopback.

:class:`LocalKafka` formats a fresh log directory with Kafka's own ``StorageTool``, runs
``kafka.Kafka`` in its own process group, and waits until a client can actually produce.
The broker never outlives its owner: :meth:`LocalKafka.stop` (SIGTERM, then SIGKILL) runs at
interpreter exit and when the object is collected, and the JVM runs under
``setpriv --pdeathsig KILL`` so the kernel kills it if the thread that started it dies without
cleaning up (``kill -9`` of Python).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import secrets
import shutil
import signal
import ssl
import subprocess
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Coroutine
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Self

from sportrix_devkit.localkafka.fetch import (
    KAFKA_VERSION,
    LocalKafkaError,
    classpath,
    java_executable,
)
from sportrix_devkit.localkafka.tls import TlsFiles, make_tls_files
from sportrix_devkit.waiting import WaitTimeout, free_port, listening, stop_process, wait_until

__all__ = [
    "BrokerState",
    "LocalKafka",
    "can_produce",
    "new_cluster_id",
    "running_broker",
    "stop_running_broker",
]

_MARKER = ".localkafka"
_STATE = "state.json"
#: Fresh starts with newly picked ports when one was taken before the broker bound it.
_PORT_TRIES = 3
_READY_TOPIC = "__localkafka_ready"
_SCRAM = "SCRAM-SHA-512"
_LOG4J2 = """\
status = warn
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = out
logger.clients.name = org.apache.kafka.clients
logger.clients.level = WARN
logger.statechange.name = state.change.logger
logger.statechange.level = WARN
"""


def new_cluster_id() -> str:
    """A random cluster id as Kafka makes them (``Uuid.randomUuid``): URL-safe base64 of 16
    random bytes, never starting with ``-``, which the storage tool would read as an option."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cluster_id.startswith("-"):
            return cluster_id


@dataclass(frozen=True)
class BrokerState:
    """What ``state.json`` in the data directory records about a running broker."""

    pid: int
    bootstrap_servers: str
    secure_bootstrap_servers: str | None
    ca_file: str | None
    untrusted_ca_file: str | None
    sasl_username: str | None
    sasl_password: str | None
    log_file: str


def _read_state(data_dir: Path) -> BrokerState | None:
    try:
        return BrokerState(**json.loads((data_dir / _STATE).read_text()))
    except FileNotFoundError:
        return None


def running_broker(data_dir: Path | str) -> BrokerState | None:
    """The broker started in ``data_dir`` if it is still running, else ``None``.

    Works across processes (``state.json`` plus a check of the pid's command line), which is
    how ``sportrix-ingester kafka status|stop`` find a broker that ``kafka start`` left running.
    """
    data_dir = Path(data_dir).resolve()
    state = _read_state(data_dir)
    if state is None:
        return None
    try:
        cmdline = Path(f"/proc/{state.pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    config = str(data_dir / "server.properties").encode()
    return state if b"kafka.Kafka" in cmdline and config in cmdline else None


def stop_running_broker(data_dir: Path | str, timeout: float = 30.0) -> BrokerState | None:
    """Stop the broker :func:`running_broker` finds (SIGTERM, SIGKILL after ``timeout``).

    Returns its state, or ``None`` when none was running.
    """
    state = running_broker(data_dir)
    if state is None:
        return None
    if not _signal_and_wait(state.pid, signal.SIGTERM, timeout) and not _signal_and_wait(
        state.pid, signal.SIGKILL, 10.0
    ):
        raise LocalKafkaError(f"the broker (pid {state.pid}) survived SIGKILL")
    with contextlib.suppress(FileNotFoundError):
        (Path(data_dir) / _STATE).unlink()
    return state


def _signal_and_wait(pgid: int, signum: signal.Signals, timeout: float) -> bool:
    """Send ``signum`` to process group ``pgid``; whether it is gone within ``timeout``."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signum)

    def gone() -> bool:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pgid, os.WNOHANG)  # reap it if it is our own child
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        return False

    try:
        return wait_until(gone, f"process group {pgid} to exit", timeout)
    except WaitTimeout:
        return False


def _pdeathsig_prefix() -> list[str]:
    """``setpriv --pdeathsig KILL --``: the kernel SIGKILLs the broker when its parent dies.

    The setting survives ``exec``, so it applies to the JVM. Empty when util-linux's
    ``setpriv`` is missing (then only :meth:`LocalKafka.stop` and the finalizer protect).
    """
    setpriv = shutil.which("setpriv")
    return [] if setpriv is None else [setpriv, "--pdeathsig", "KILL", "--"]


def _run_coroutine(factory: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run a coroutine to completion on a private event loop in a helper thread.

    Works whether or not the caller is itself inside a running event loop.
    """
    error: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(factory())
        except BaseException as exc:
            error.append(exc)

    thread = threading.Thread(target=target, name="localkafka-probe", daemon=True)
    thread.start()
    thread.join()
    if error:
        raise error[0]


class LocalKafka:
    """One Apache Kafka broker in KRaft mode on 127.0.0.1, owned by this Python process.

    ``data_dir`` holds everything: the KRaft log directory, ``server.properties``, the broker's
    output (``broker.log``), the TLS files and ``state.json``. It must be empty, missing, or
    made by an earlier ``LocalKafka`` (then it is wiped on :meth:`start`). Ports ``0`` are
    chosen free at the first start and kept, so :meth:`restart` comes back on the same
    addresses with the same data. ``secure=True`` adds a SASL_SSL listener (SCRAM-SHA-512,
    certificate from a generated CA). ``quick_start=True`` runs the JVMs with the C1 compiler
    only and the serial collector: start-up takes about a third less time and CPU (the demo,
    the tests), at a lower peak throughput (the benchmarks turn it off).
    """

    def __init__(
        self,
        data_dir: Path | str,
        *,
        port: int = 0,
        secure: bool = False,
        secure_port: int = 0,
        controller_port: int = 0,
        heap: str = "512m",
        quick_start: bool = True,
        start_timeout: float = 120.0,
        stop_timeout: float = 30.0,
        die_with_parent: bool = True,
    ) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.port = port
        self.secure = secure
        self.secure_port = secure_port
        self.controller_port = controller_port
        self.heap = heap
        self.quick_start = quick_start
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.die_with_parent = die_with_parent
        self.sasl_username = "ingester"
        """The SCRAM-SHA-512 user created on the secured listener."""
        self.sasl_password = secrets.token_urlsafe(18)
        """That user's password (random per instance)."""
        self._tls: TlsFiles | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._finalizer: weakref.finalize[Any, Any] | None = None

    # -- addresses and credentials -------------------------------------------------------

    @property
    def bootstrap_servers(self) -> str:
        """``host:port`` of the PLAINTEXT listener."""
        self._require_ports()
        return f"127.0.0.1:{self.port}"

    @property
    def secure_bootstrap_servers(self) -> str:
        """``host:port`` of the SASL_SSL listener (needs ``secure=True``)."""
        self._require_secure()
        return f"127.0.0.1:{self.secure_port}"

    @property
    def ca_file(self) -> Path:
        """PEM file of the CA that signed the broker's certificate."""
        return self._require_secure().ca_file

    @property
    def untrusted_ca_file(self) -> Path:
        """PEM file of an unrelated CA, for "untrusted certificate" tests."""
        return self._require_secure().untrusted_ca_file

    @property
    def log_file(self) -> Path:
        """The broker's own output (log4j2 at INFO)."""
        return self.data_dir / "broker.log"

    @property
    def running(self) -> bool:
        """Whether the broker process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def ssl_context(self, *, trust_untrusted_ca: bool = False) -> ssl.SSLContext:
        """A client TLS context trusting :attr:`ca_file` (or :attr:`untrusted_ca_file`)."""
        ca = self.untrusted_ca_file if trust_untrusted_ca else self.ca_file
        return ssl.create_default_context(cafile=str(ca))

    def secure_client_config(self, *, password: str | None = None) -> dict[str, Any]:
        """aiokafka keyword arguments for the secured listener (SASL_SSL, SCRAM-SHA-512)."""
        return {
            "bootstrap_servers": self.secure_bootstrap_servers,
            "security_protocol": "SASL_SSL",
            "sasl_mechanism": _SCRAM,
            "sasl_plain_username": self.sasl_username,
            "sasl_plain_password": self.sasl_password if password is None else password,
            "ssl_context": self.ssl_context(),
        }

    def _require_ports(self) -> None:
        if not self.port:
            raise LocalKafkaError("the broker has no port yet: call start() first")

    def _require_secure(self) -> TlsFiles:
        if not self.secure:
            raise LocalKafkaError("the secured listener is off: create LocalKafka(secure=True)")
        if self._tls is None or not self.secure_port:
            raise LocalKafkaError("the broker has no secured listener yet: call start() first")
        return self._tls

    # -- life cycle ----------------------------------------------------------------------

    def start(self) -> Self:
        """Format a fresh log directory, start the broker, and wait until it takes records."""
        if self.running:
            raise LocalKafkaError(f"the broker is already running (pid {self._pid()})")
        given = (self.port, self.controller_port, self.secure_port)
        fixed = all(given[: 3 if self.secure else 2])
        attempt = 1
        while True:
            self._prepare_data_dir()
            self.port = given[0] or free_port()
            self.controller_port = given[1] or free_port()
            if self.secure:
                self.secure_port = given[2] or free_port()
                self._tls = make_tls_files(self.data_dir / "tls")
            self._write_config()
            self._format()
            try:
                self._launch()
            except LocalKafkaError:
                # A port found free was taken by another process before the broker bound
                # it (tests run in parallel): pick new ones, unless they were given.
                if attempt == _PORT_TRIES or fixed or not self._lost_a_port():
                    raise
                attempt += 1
                continue
            return self

    def _lost_a_port(self) -> bool:
        """True when the broker's log says one of its listeners' ports was taken."""
        try:
            return "Address already in use" in self.log_file.read_text(errors="replace")
        except FileNotFoundError:
            return False

    def restart(self, downtime: float = 0.0) -> None:
        """Stop the broker, wait ``downtime`` seconds, start it again: same ports, same data."""
        self.stop()
        time.sleep(downtime)
        self.start_again()

    def start_again(self) -> None:
        """Start a stopped broker on its existing log directory, ports and users."""
        if self.running:
            raise LocalKafkaError(f"the broker is already running (pid {self._pid()})")
        if not (self.data_dir / "kraft" / "meta.properties").is_file():
            raise LocalKafkaError("nothing to start again: call start() first")
        self._launch()

    def stop(self) -> None:
        """Stop the broker (SIGTERM, then SIGKILL after ``stop_timeout``); idempotent."""
        proc, self._proc = self._proc, None
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        if proc is not None:
            stop_process(proc, self.stop_timeout)
        with contextlib.suppress(FileNotFoundError):
            (self.data_dir / _STATE).unlink()

    def detach(self) -> int:
        """Leave the running broker alive beyond this object and this process; return its pid.

        Only for a broker created with ``die_with_parent=False``; stop it later with
        :func:`stop_running_broker`.
        """
        if self._proc is None or not self.running:
            raise LocalKafkaError("no running broker to detach")
        if self.die_with_parent:
            raise LocalKafkaError("a broker started with die_with_parent=True cannot outlive us")
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        pid, self._proc = self._proc.pid, None
        return pid

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- internals -----------------------------------------------------------------------

    def _pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def _prepare_data_dir(self) -> None:
        data = self.data_dir
        if data.exists() and any(data.iterdir()):
            if not (data / _MARKER).is_file():
                raise LocalKafkaError(
                    f"{data} is not empty and was not made by LocalKafka; refusing to wipe it"
                )
            state = running_broker(data)
            if state is not None:
                raise LocalKafkaError(
                    f"a broker (pid {state.pid}) still runs on {data}; stop it first"
                )
            shutil.rmtree(data)
        data.mkdir(parents=True, exist_ok=True)
        (data / _MARKER).write_text(
            "made by sportrix_devkit.localkafka; wiped on every fresh start\n"
        )

    def _listeners(self) -> dict[str, tuple[str, int]]:
        listeners = {"PLAINTEXT": ("PLAINTEXT", self.port)}
        if self.secure:
            listeners["SECURE"] = ("SASL_SSL", self.secure_port)
        return listeners

    def _write_config(self) -> None:
        listeners = self._listeners()
        advertised = ",".join(f"{n}://127.0.0.1:{p}" for n, (_, p) in listeners.items())
        props: dict[str, str | int] = {
            "process.roles": "broker,controller",
            "node.id": 1,
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listeners": f"{advertised},CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": advertised,
            "listener.security.protocol.map": ",".join(
                [f"{n}:{proto}" for n, (proto, _) in listeners.items()] + ["CONTROLLER:PLAINTEXT"]
            ),
            "log.dirs": str(self.data_dir / "kraft"),
            "num.partitions": 1,
            "default.replication.factor": 1,
            "min.insync.replicas": 1,
            "auto.create.topics.enable": "true",
            "offsets.topic.replication.factor": 1,
            "offsets.topic.num.partitions": 4,
            "transaction.state.log.replication.factor": 1,
            "transaction.state.log.min.isr": 1,
            "transaction.state.log.num.partitions": 4,
            "share.coordinator.state.topic.replication.factor": 1,
            "share.coordinator.state.topic.min.isr": 1,
            "group.initial.rebalance.delay.ms": 0,
            # Sized for a 2-core test machine.
            "num.network.threads": 2,
            "num.io.threads": 2,
            "background.threads": 2,
            "num.recovery.threads.per.data.dir": 1,
            "log.cleaner.threads": 1,
            "log.cleaner.dedupe.buffer.size": 8 * 1024 * 1024,
        }
        if self.secure:
            tls = self._require_secure()
            props |= {
                "listener.name.secure.sasl.enabled.mechanisms": _SCRAM,
                "listener.name.secure.scram-sha-512.sasl.jaas.config": (
                    "org.apache.kafka.common.security.scram.ScramLoginModule required;"
                ),
                "listener.name.secure.ssl.keystore.type": "PEM",
                "listener.name.secure.ssl.keystore.location": str(tls.server_keystore),
            }
        (self.data_dir / "server.properties").write_text(
            "".join(f"{key}={value}\n" for key, value in props.items())
        )
        (self.data_dir / "log4j2.properties").write_text(_LOG4J2)

    def _java(self, main: str, *args: str) -> list[str]:
        return [
            java_executable(),
            f"-Xmx{self.heap}",
            "-Xms128m",
            "-XX:+ExitOnOutOfMemoryError",
            *(["-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"] if self.quick_start else []),
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.data_dir / 'log4j2.properties'}",
            "-cp",
            os.pathsep.join(str(jar) for jar in classpath()),
            main,
            *args,
        ]

    def _format(self) -> None:
        args = ["format", "-t", new_cluster_id(), "-c", str(self.data_dir / "server.properties")]
        if self.secure:
            user = f"name={self.sasl_username},password={self.sasl_password}"
            args += ["--add-scram", f"{_SCRAM}=[{user}]"]
        proc = subprocess.run(
            self._java("kafka.tools.StorageTool", *args),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            output = (proc.stdout + proc.stderr).replace(self.sasl_password, "***")
            raise LocalKafkaError(f"kafka-storage format failed:\n{output.strip()}")

    def _launch(self) -> None:
        with self.log_file.open("ab") as log:
            self._proc = subprocess.Popen(
                [
                    *(_pdeathsig_prefix() if self.die_with_parent else []),
                    *self._java("kafka.Kafka", str(self.data_dir / "server.properties")),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._finalizer = weakref.finalize(self, stop_process, self._proc, self.stop_timeout)
        try:
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise
        self._write_state()

    def _write_state(self) -> None:
        assert self._proc is not None
        state = BrokerState(
            pid=self._proc.pid,
            bootstrap_servers=self.bootstrap_servers,
            secure_bootstrap_servers=self.secure_bootstrap_servers if self.secure else None,
            ca_file=str(self.ca_file) if self.secure else None,
            untrusted_ca_file=str(self.untrusted_ca_file) if self.secure else None,
            sasl_username=self.sasl_username if self.secure else None,
            sasl_password=self.sasl_password if self.secure else None,
            log_file=str(self.log_file),
        )
        path = self.data_dir / _STATE
        path.touch(mode=0o600)
        path.write_text(json.dumps(asdict(state), indent=2) + "\n")

    def _log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_file.read_text(errors="replace")
        except FileNotFoundError:
            return "(no broker log)"
        return "\n".join(text.splitlines()[-lines:])

    def _wait_until_ready(self) -> None:
        """Until a producer gets a record acknowledged on every listener, in turn."""
        pending = [{"bootstrap_servers": self.bootstrap_servers}]
        if self.secure:
            pending.append(self.secure_client_config())

        def ready() -> bool:
            proc = self._proc
            if proc is None or proc.poll() is not None:
                code = None if proc is None else proc.returncode
                raise LocalKafkaError(
                    f"Kafka {KAFKA_VERSION} exited during start-up (exit {code}); "
                    f"last lines of {self.log_file}:\n{self._log_tail()}"
                )
            if listening(self.port) and can_produce(pending[0]):
                pending.pop(0)
            return not pending

        try:
            wait_until(ready, "a record taken", self.start_timeout, interval=0.2)
        except WaitTimeout:
            raise LocalKafkaError(
                f"Kafka {KAFKA_VERSION} did not take a record within "
                f"{self.start_timeout:.0f} s; last lines of {self.log_file}:\n"
                f"{self._log_tail()}"
            ) from None


def can_produce(config: dict[str, Any]) -> bool:
    """Whether a producer with aiokafka ``config`` gets one record acknowledged (``acks=all``)."""
    from aiokafka import AIOKafkaProducer

    async def produce() -> None:
        producer = AIOKafkaProducer(request_timeout_ms=5000, acks="all", **config)
        try:
            await producer.start()
            async with asyncio.timeout(10):
                await producer.send_and_wait(_READY_TOPIC, b"ready")
        finally:
            await producer.stop()

    try:
        _run_coroutine(produce)
    except Exception:
        return False
    return True
