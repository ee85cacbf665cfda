"""Real processes for end-to-end tests: the simulator, the daemon, and topic readers.

Everything runs as the user would run it (``python -m ingester simulate|run``) over
loopback, against the session's real Kafka broker. Waiting is always on a condition with a
deadline, never a fixed sleep.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from ingester.control.commands import encode_command
from ingester.control.topics import ensure_topics
from ingester.encode import Decoder
from ingester.settings import load_settings
from sportrix_devkit.bench.processes import Child
from sportrix_devkit.waiting import free_port, wait_until, wait_until_async

#: The API key of the e2e tests: distinctive, so a leak anywhere is found by a search.
TEST_KEY = "sk_test_7Qm2v9XcLp4R"


#: ``await wait_for(probe, what, within=30.0, interval=0.1)``: the devkit's wait, for tests.
wait_for = wait_until_async


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    """Status and body of a GET (HTTP errors are answers, not exceptions)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


class Process(Child):
    """``python -m ingester ARGS``, output in a log file; :meth:`stop` ends its process group."""

    def output(self) -> str:
        """Everything the process printed so far."""
        return self.log.read_text(errors="replace")

    def alive(self) -> bool:
        """True while the process runs."""
        return self.proc.poll() is None

    def signal(self, signum: int) -> None:
        """Send ``signum`` to the process."""
        if self.alive():
            self.proc.send_signal(signum)

    def wait(self, timeout: float) -> int:
        """Wait for the exit code."""
        return self.proc.wait(timeout)


class Simulator(Process):
    """``sportrix-ingester simulate`` on a free loopback port."""

    def __init__(self, tmp: Path, *args: str, keys: tuple[str, ...] = (TEST_KEY,)) -> None:
        self.port = free_port()
        key_args = [a for key in keys for a in ("--api-key", key)]
        super().__init__(
            [
                "simulate", "--host", "127.0.0.1", "--port", str(self.port),
                "--seed", "7", *key_args, *args,
            ],
            tmp / f"simulator-{self.port}.log",
        )  # fmt: skip
        self.url = f"ws://127.0.0.1:{self.port}/v1/stream"
        wait_until(
            self._catalogue, "the simulator to start", 30, details=lambda: self.output()[-3000:]
        )

    def _catalogue(self) -> list[dict[str, Any]] | None:
        if not self.alive():
            raise AssertionError(f"simulator exited:\n{self.output()[-3000:]}")
        try:
            status, body = http_get(f"http://127.0.0.1:{self.port}/v1/matches", 2)
        except OSError:
            return None
        return json.loads(body) if status == 200 else None

    def get(self, path: str) -> Any:
        """GET ``path`` on the simulator (catalogue or ``/_sim/`` control) as JSON."""
        status, body = http_get(f"http://127.0.0.1:{self.port}{path}")
        assert status == 200, f"{path}: HTTP {status} {body[:200]!r}"
        return json.loads(body) if body else None

    def matches(self, sport: str, status: str = "live") -> list[int]:
        """Ids of the catalogue's matches of ``sport`` in ``status``."""
        catalogue = self.get("/v1/matches")
        return [m["match_id"] for m in catalogue if m["sport"] == sport and m["status"] == status]

    def state_at(self, match_id: int, seq: int) -> dict[str, Any]:
        """The match's ``data`` as the simulator sent it at ``seq``."""
        state: dict[str, Any] = self.get(f"/_sim/matches/{match_id}/states/{seq}")
        return state


@dataclass
class Topics:
    """Unique topic names for one daemon (or a group of replicas)."""

    data: str
    config: str
    dlq: str

    def env(self) -> dict[str, str]:
        """The daemon's topic settings."""
        return {
            "INGESTER_TOPIC": self.data,
            "INGESTER_CONFIG_TOPIC": self.config,
            "INGESTER_DLQ_TOPIC": self.dlq,
        }


class Daemon(Process):
    """``sportrix-ingester run`` with its HTTP port on a free loopback port."""

    def __init__(
        self,
        tmp: Path,
        bootstrap: str,
        upstream_url: str,
        topics: Topics,
        api_key: str | None = TEST_KEY,
        **settings: str,
    ) -> None:
        self.http_port = free_port()
        name = settings.pop("INGESTER_INSTANCE_ID", f"ingester-{self.http_port}")
        self.instance_id = name
        self.bootstrap = bootstrap
        self.topics = topics
        env = {
            "SPORTRIX_URL": upstream_url,
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "INGESTER_HTTP_PORT": str(self.http_port),
            "INGESTER_HTTP_HOST": "127.0.0.1",
            "INGESTER_INSTANCE_ID": name,
            "INGESTER_LOG_FORMAT": "json",
            "INGESTER_CONFIG_PARTITIONS": "6",
            "INGESTER_TOPIC_PARTITIONS": "3",
            "INGESTER_SESSION_TIMEOUT_MS": "6000",
            "INGESTER_BACKOFF_BASE": "0.1",
            "INGESTER_BACKOFF_CAP": "2",
            "SPORTRIX_PROXY": "none",  # loopback upstreams, whatever proxy the machine has
            **topics.env(),
            **settings,
        }
        if api_key is not None:
            env["SPORTRIX_API_KEY"] = api_key
        super().__init__(["run"], tmp / f"{name}.log", env)

    def get(self, path: str) -> tuple[int, bytes]:
        """GET ``path`` on the daemon's HTTP port."""
        try:
            return http_get(f"http://127.0.0.1:{self.http_port}{path}", 5)
        except OSError:
            return 0, b""

    def status(self) -> dict[str, Any]:
        """The ``/status`` document."""
        code, body = self.get("/status")
        assert code == 200, f"/status: HTTP {code}"
        status: dict[str, Any] = json.loads(body)
        return status

    def match_states(self) -> dict[int, str]:
        """``{match_id: state}`` from ``/status`` ({} while the daemon is not up)."""
        code, body = self.get("/status")
        if code != 200:
            return {}
        return {m["match_id"]: m["state"] for m in json.loads(body)["matches"]}

    async def wait_ready(self, deadline: float = 60.0) -> None:
        """Wait until ``/readyz`` answers 200."""

        def ready() -> bool:
            if not self.alive():
                raise AssertionError(f"daemon exited:\n{self.output()[-4000:]}")
            return self.get("/readyz")[0] == 200

        await wait_for(ready, f"{self.instance_id} to be ready", deadline)

    async def wait_active(self, match_ids: list[int], deadline: float = 60.0) -> None:
        """Wait until every one of ``match_ids`` is ``active`` here."""
        await wait_for(
            lambda: all(self.match_states().get(m) == "active" for m in match_ids),
            f"matches {match_ids} active on {self.instance_id}",
            deadline,
        )

    async def follow(self, match_ids: list[int], deadline: float = 60.0) -> None:
        """Wait until ready, add ``match_ids`` on its config topic, wait until all are active."""
        await self.wait_ready(deadline)
        await add_matches(self.bootstrap, self.topics.config, match_ids)
        await self.wait_active(match_ids, deadline)

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """Every sample of ``/metrics``, keyed by name and sorted labels ({} while not up)."""
        code, body = self.get("/metrics")
        if code != 200:
            return {}
        samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        for family in text_string_to_metric_families(body.decode()):
            for sample in family.samples:
                samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return samples

    def everything_visible(self) -> str:
        """All the daemon printed, and what /metrics, /status and /readyz answer now."""
        answers = [self.get(path)[1].decode(errors="replace") for path in (
            "/metrics", "/status", "/readyz", "/healthz"
        )]  # fmt: skip
        return self.output() + "".join(answers)

    def metric(self, name: str, **labels: str) -> float:
        """One sample's value (0 when absent)."""
        return self.metrics().get((name, tuple(sorted(labels.items()))), 0.0)

    def total(self, name: str, **fixed: str) -> float:
        """Sum of a metric's samples whose labels include ``fixed``."""
        return sum(
            value
            for (sample, labels), value in self.metrics().items()
            if sample == name and all(dict(labels).get(k) == v for k, v in fixed.items())
        )


async def send_commands(
    bootstrap: str, topic: str, commands: list[tuple[bytes | None, bytes | None]]
) -> None:
    """Write raw (key, value) records to the config topic, in order.

    Like ``sportrix-ingester matches``, it first creates the config topic (compacted) when it
    is missing, so the broker never auto-creates it with the wrong cleanup policy.
    """
    settings = load_settings(
        kafka_bootstrap_servers=bootstrap, config_topic=topic, config_partitions=6
    )
    await ensure_topics(settings, data_topics=False)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for key, value in commands:
            await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


async def add_matches(
    bootstrap: str, topic: str, match_ids: list[int], action: str = "add"
) -> None:
    """Write ``add`` (or ``remove``) commands exactly as the contract says."""
    await send_commands(
        bootstrap,
        topic,
        [encode_command("add" if action == "add" else "remove", m) for m in match_ids],
    )


@dataclass
class Record:
    """A consumed record, decoded when it is Avro."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes]
    decoded: dict[str, Any] | None = None


@dataclass
class TopicReader:
    """Reads a topic from the beginning, accumulating records across calls."""

    bootstrap: str
    topic: str
    decode: bool = True
    records: list[Record] = field(default_factory=list)
    _consumer: AIOKafkaConsumer | None = None
    _decoder: Decoder | None = None

    async def poll_until(
        self, done: Callable[[list[Record]], bool], what: str, deadline: float = 60.0
    ) -> list[Record]:
        """Poll until ``done(records)``; fail with ``what`` after ``deadline`` seconds."""
        if self._consumer is None:
            self._consumer = AIOKafkaConsumer(
                self.topic,
                bootstrap_servers=self.bootstrap,
                auto_offset_reset="earliest",
                enable_auto_commit=False,
            )
            await self._consumer.start()
            self._decoder = Decoder()

        async def read() -> bool:
            if not done(self.records):
                await self._read_batch()
            return done(self.records)

        await wait_until_async(
            read,
            f"{what} on {self.topic}",
            deadline,
            interval=0,  # each try waits up to 300 ms for records
            details=lambda: f"{len(self.records)} records read",
        )
        return self.records

    async def _read_batch(self) -> None:
        assert self._consumer is not None
        assert self._decoder is not None
        for records in (await self._consumer.getmany(timeout_ms=300)).values():
            for r in records:
                decoded = None
                if self.decode and r.value is not None:
                    decoded = self._decoder.decode(r.value).record
                self.records.append(
                    Record(
                        r.topic,
                        r.partition,
                        r.offset,
                        r.key,
                        r.value,
                        {k: v for k, v in r.headers},
                        decoded,
                    )
                )

    async def close(self) -> None:
        """Stop the consumer."""
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None

    def by_match(self) -> dict[int, list[Record]]:
        """Records grouped by their key (the match id), in topic order."""
        grouped: dict[int, list[Record]] = {}
        for record in self.records:
            grouped.setdefault(int(record.key or b"0"), []).append(record)
        return grouped
