"""The daemon on the SASL_SSL listener (SCRAM-SHA-512 over TLS), documented settings only."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from sportrix_devkit.localkafka import LocalKafka
from tests.e2e.harness import Daemon, Simulator, TopicReader, Topics, add_matches, wait_for


def _secure_env(kafka: LocalKafka, tmp_path: Path, password: str, ca: Path) -> dict[str, str]:
    secret = tmp_path / "kafka-password"
    secret.write_text(password + "\n")
    return {
        "KAFKA_BOOTSTRAP_SERVERS": kafka.secure_bootstrap_servers,
        "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "KAFKA_SASL_USERNAME": kafka.sasl_username,
        "KAFKA_SASL_PASSWORD_FILE": str(secret),
        "KAFKA_SSL_CA_FILE": str(ca),
    }


async def test_produces_and_consumes_through_sasl_ssl(
    tmp_path: Path, local_kafka: LocalKafka, topics: Topics, data_reader: TopicReader
) -> None:
    simulator = Simulator(tmp_path, "--update-rate", "5")
    matches = simulator.matches("soccer")[:2]
    env = _secure_env(local_kafka, tmp_path, local_kafka.sasl_password, local_kafka.ca_file)
    daemon = Daemon(tmp_path, local_kafka.secure_bootstrap_servers, simulator.url, topics, **env)
    try:
        await daemon.wait_ready()
        # the config topic is written on the plaintext listener, consumed by the daemon
        # through SASL_SSL; the records it produces there are read back below
        await add_matches(local_kafka.bootstrap_servers, topics.config, matches)
        await daemon.wait_active(matches)
        await data_reader.poll_until(
            lambda rs: {int(r.key or b"0") for r in rs} == set(matches), "records of both"
        )
        assert local_kafka.sasl_password not in daemon.everything_visible()
    finally:
        assert daemon.stop() == 0
        simulator.stop()


@pytest.mark.parametrize("fault", ["wrong_password", "untrusted_ca"])
async def test_bad_credentials_give_one_clear_line_and_not_ready(
    tmp_path: Path, local_kafka: LocalKafka, topics: Topics, fault: str
) -> None:
    simulator = Simulator(tmp_path)
    wrong = "Wr0ng-pass-Zq81xT"
    password = wrong if fault == "wrong_password" else local_kafka.sasl_password
    ca = local_kafka.untrusted_ca_file if fault == "untrusted_ca" else local_kafka.ca_file
    env = _secure_env(local_kafka, tmp_path, password, ca)
    daemon = Daemon(tmp_path, local_kafka.secure_bootstrap_servers, simulator.url, topics, **env)
    try:
        started = time.monotonic()
        await wait_for(lambda: daemon.get("/readyz")[0] == 503, "/readyz answering 503", 30)
        while time.monotonic() - started < 25:  # the fault persists: stay up, stay not ready
            assert daemon.alive(), daemon.output()[-3000:]
            assert daemon.get("/readyz")[0] == 503
            assert daemon.get("/healthz")[0] == 200
            await asyncio.sleep(1)
        code, body = daemon.get("/readyz")
        output = daemon.output()
        errors = [
            line for line in output.splitlines() if '"level":"error"' in line or "ERROR" in line
        ]
        print(f"== secured Kafka, {fault}: /readyz {code} {body[:200]!r}")
        for line in errors:
            print("   ", line[:300])
        cause = (
            "SaslAuthenticationFailed" if fault == "wrong_password" else "CERTIFICATE_VERIFY_FAILED"
        )
        assert [line for line in errors if cause in line], "the error line names the cause"
        assert len(errors) == 1, "one clear error line, not one per retry"
        visible = daemon.everything_visible()
        assert wrong not in visible
        assert local_kafka.sasl_password not in visible
    finally:
        daemon.stop()
        simulator.stop()


async def test_a_rewritten_password_file_is_picked_up_without_a_restart(
    tmp_path: Path, local_kafka: LocalKafka, topics: Topics, data_reader: TopicReader
) -> None:
    """The mounted Secret holds a wrong password, then the right one (a rotation): the
    daemon re-reads ``KAFKA_SASL_PASSWORD_FILE`` for every Kafka client it builds (the
    producer, the config consumer), so it becomes ready and produces, same process."""
    simulator = Simulator(tmp_path, "--update-rate", "5")
    matches = simulator.matches("soccer")[:2]
    wrong = "Wr0ng-pass-Rot8d1"
    env = _secure_env(local_kafka, tmp_path, wrong, local_kafka.ca_file)
    daemon = Daemon(tmp_path, local_kafka.secure_bootstrap_servers, simulator.url, topics, **env)
    try:
        await wait_for(lambda: "SaslAuthenticationFailed" in daemon.output(), "the refusal", 60)
        assert daemon.get("/readyz")[0] == 503
        secret = tmp_path / "kafka-password"  # the file _secure_env wrote: the Secret rotates
        secret.write_text(local_kafka.sasl_password + "\n")
        await daemon.wait_ready(120)
        await add_matches(local_kafka.bootstrap_servers, topics.config, matches)
        await daemon.wait_active(matches)
        await data_reader.poll_until(
            lambda rs: {int(r.key or b"0") for r in rs} == set(matches), "records of both"
        )
        visible = daemon.everything_visible()
        assert wrong not in visible
        assert local_kafka.sasl_password not in visible
    finally:
        assert daemon.stop() == 0
        simulator.stop()
