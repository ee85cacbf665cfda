"""docker-compose.yml: valid against the compose specification, and coherent with the project.

The schema is the compose-spec JSON schema that ``check-jsonschema`` vendors
(``--builtin-schema vendor.compose-spec``): no download, the test runs offline. No Docker engine
runs here, so the rest checks what a ``docker compose up`` would trip over: the commands parse
with the real CLI, the settings are the daemon's, mounted files exist, Prometheus scrapes the job
the rules select, and Grafana loads the dashboard from the chart's files.
"""

from __future__ import annotations

import fnmatch
import re
import shutil
import subprocess
import sys
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from ingester.cli import build_parser
from ingester.settings import Settings

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yml"
CHART_FILES = REPO / "helm" / "sportrix-ingester" / "files"


def check_jsonschema() -> str:
    beside = Path(sys.executable).parent / "check-jsonschema"
    found = str(beside) if beside.is_file() else shutil.which("check-jsonschema")
    if found is None:
        pytest.fail("check-jsonschema not found: install the dev dependencies", pytrace=False)
    return found


def validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [check_jsonschema(), "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return loaded


def test_valid_against_the_compose_spec() -> None:
    done = validate(COMPOSE)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_schema_check_is_not_vacuous(tmp_path: Path, compose: dict[str, Any]) -> None:
    broken = dict(compose)
    broken["services"] = {**compose["services"], "ingester": {"imgae": "typo"}}
    path = tmp_path / "docker-compose.yml"
    path.write_text(yaml.safe_dump(broken), encoding="utf-8")
    assert validate(path).returncode != 0


def test_the_stack(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"kafka", "simulator", "ingester", "prometheus", "grafana"} <= set(services)
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    assert "broker,controller" in str(kafka["environment"]["KAFKA_PROCESS_ROLES"])  # KRaft
    assert "ZOOKEEPER" not in str(kafka["environment"]).upper()
    cluster_id = kafka["environment"]["CLUSTER_ID"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", cluster_id), "CLUSTER_ID: a base64url UUID"
    for name, service in services.items():
        if "build" in service:
            assert service["build"]["dockerfile"] == "Dockerfile", name
        else:
            image = service["image"]
            tag = image.rpartition(":")[2]
            assert ":" in image, f"{name}: image not pinned"
            assert tag != "latest", f"{name}: image not pinned"
            assert re.match(r"v?\d", tag), f"{name}: pin a version tag, not {tag}"


def test_commands_parse_with_the_real_cli(compose: dict[str, Any]) -> None:
    parser = build_parser()
    for name in ("simulator", "ingester", "matches"):
        command = compose["services"][name]["command"]
        args = parser.parse_args(command)
        assert callable(args.handler), name
    assert compose["services"]["simulator"]["command"][0] == "simulate"
    assert compose["services"]["ingester"]["command"] == ["run"]


def test_settings_are_the_daemons_and_secrets_are_files(compose: dict[str, Any]) -> None:
    known = {f.validation_alias.choices[0] for f in Settings.model_fields.values()}  # type: ignore[union-attr]
    for name in ("ingester", "matches"):
        env = compose["services"][name]["environment"]
        assert set(env) <= known, f"{name}: unknown settings {sorted(set(env) - known)}"
        assert "SPORTRIX_API_KEY" not in env
        assert "KAFKA_SASL_PASSWORD" not in env
        assert env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    ingester = compose["services"]["ingester"]
    env = ingester["environment"]
    assert env["SPORTRIX_URL"].startswith("ws://simulator:")
    (secret,) = ingester["secrets"]
    assert env["SPORTRIX_API_KEY_FILE"] == f"/run/secrets/{secret}"
    assert (REPO / compose["secrets"][secret]["file"]).is_file()
    grace = ingester["stop_grace_period"]
    assert grace.endswith("s")
    assert float(grace[:-1]) >= float(env.get("INGESTER_FLUSH_TIMEOUT", 20)) + 5
    assert ingester["read_only"] is True
    assert ingester["cap_drop"] == ["ALL"]


def _mounts(service: dict[str, Any]) -> dict[str, Path]:
    """Container path -> host path of the service's bind mounts (named volumes left out)."""
    out = {}
    for volume in service.get("volumes", []):
        host, _, rest = volume.partition(":")
        target = rest.split(":")[0]
        if host == "spool":
            continue
        assert host.startswith("./"), f"bind mounts only, relative to the repository: {volume}"
        out[target] = (REPO / host).resolve()
    return out


def test_the_ingester_spools_to_a_named_volume(compose: dict[str, Any]) -> None:
    ingester = compose["services"]["ingester"]
    env = ingester["environment"]
    assert ingester["volumes"] == [f"spool:{env['INGESTER_SPOOL_DIR']}"]
    assert "spool" in compose["volumes"]
    settings = Settings(
        spool_dir=env["INGESTER_SPOOL_DIR"], spool_max_bytes=env["INGESTER_SPOOL_MAX_BYTES"]
    )
    assert settings.spool_max_bytes == 256 * 1024**2
    # The image makes the mount point, owned by the daemon's user, so a new volume starts so.
    assert f"install -d -o 10001 -g 10001 -m 0750 {env['INGESTER_SPOOL_DIR']}" in (
        REPO / "Dockerfile"
    ).read_text(encoding="utf-8")


def test_mounted_files_exist_and_come_from_the_chart(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        for target, host in _mounts(service).items():
            assert host.exists(), f"{name}: {host} (for {target}) is missing"
    prometheus = _mounts(services["prometheus"])
    grafana = _mounts(services["grafana"])
    assert CHART_FILES / "alerts.rules.yml" in prometheus.values()
    assert CHART_FILES / "dashboard.json" in grafana.values()
    # One home for both: no copies elsewhere in the repository.
    for copy in (*REPO.glob("deploy/**/*.json"), *REPO.glob("deploy/**/*rules*")):
        pytest.fail(f"a copy of the dashboard or rules: {copy}")


def test_prometheus_scrapes_what_the_rules_select(compose: dict[str, Any]) -> None:
    services = compose["services"]
    mounts = _mounts(services["prometheus"])
    config = yaml.safe_load(mounts["/etc/prometheus/prometheus.yml"].read_text(encoding="utf-8"))
    rules_target = next(t for t, h in mounts.items() if h == CHART_FILES / "alerts.rules.yml")
    assert any(fnmatch.fnmatch(rules_target, pattern) for pattern in config["rule_files"])
    (job,) = [j for j in config["scrape_configs"] if "sportrix" in j["job_name"]]
    rules = (CHART_FILES / "alerts.rules.yml").read_text(encoding="utf-8")
    for selector in set(re.findall(r'job=~"([^"]+)"', rules)):
        assert re.fullmatch(selector, job["job_name"]), (selector, job["job_name"])
    (targets,) = [c["targets"] for c in job["static_configs"]]
    port = services["ingester"]["environment"].get("INGESTER_HTTP_PORT", 9108)
    assert targets == [f"ingester:{port}"]


def test_grafana_provisions_the_dashboard(compose: dict[str, Any]) -> None:
    grafana = compose["services"]["grafana"]
    mounts = _mounts(grafana)
    provisioning = mounts["/etc/grafana/provisioning"]
    dashboard_target = next(t for t, h in mounts.items() if h == CHART_FILES / "dashboard.json")
    providers = yaml.safe_load(
        (provisioning / "dashboards" / "sportrix-ingester.yml").read_text(encoding="utf-8")
    )["providers"]
    assert any(
        PurePosixPath(dashboard_target).parent == PurePosixPath(p["options"]["path"])
        for p in providers
    )
    datasources = yaml.safe_load(
        (provisioning / "datasources" / "prometheus.yml").read_text(encoding="utf-8")
    )["datasources"]
    (prometheus,) = datasources
    assert prometheus["type"] == "prometheus"
    assert prometheus["url"] == "http://prometheus:9090"
