"""The Helm chart: lint, render with several value sets, validate offline, check what matters.

Every rendered manifest of a built-in kind is validated in strict mode against the Kubernetes
OpenAPI schemas that the ``kubernetes-validate`` package ships, for the oldest Kubernetes the
chart supports and the newest the package knows. The two Prometheus Operator kinds have no
schema there; their content is checked field by field instead.
"""

from __future__ import annotations

import base64
import copy
import json
import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from ingester import __version__
from ingester.settings import Settings

from .conftest import CHART, Helm

#: Oldest supported (Chart.yaml kubeVersion) and a recent one; both ship with the package.
KUBERNETES_VERSIONS = ("1.29.0", "1.33.0")
CRD_KINDS = {"ServiceMonitor", "PrometheusRule"}
RUNBOOK_BASE = "https://git.example.com/sportrix-ingester/blob/v1.0.0"

# Distinctive fake secrets: none may appear in plain text in any rendered manifest.
FAKE_API_KEY = "FAKE-api-key-7c1e9b3d-never-render-me"
FAKE_SASL_PASSWORD = "FAKE-sasl-password-5f2a8e61-never-render-me"
SECRETS = (FAKE_API_KEY, FAKE_SASL_PASSWORD)
FAKE_PROXY_PASSWORD = "FAKE-proxy-password-3b9d-never-render-me"

#: Settings the chart sets itself from structured values (never through `config`).
CHART_MANAGED = {
    "SPORTRIX_API_KEY_FILE",
    "KAFKA_BOOTSTRAP_SERVERS",
    "KAFKA_SECURITY_PROTOCOL",
    "KAFKA_SASL_MECHANISM",
    "KAFKA_SASL_USERNAME",
    "KAFKA_SASL_PASSWORD_FILE",
    "KAFKA_SSL_CA_FILE",
    "KAFKA_SSL_CERT_FILE",
    "KAFKA_SSL_KEY_FILE",
    "KAFKA_SSL_CHECK_HOSTNAME",
    "INGESTER_INSTANCE_ID",
    "INGESTER_HTTP_HOST",
    "INGESTER_HTTP_PORT",
    "INGESTER_SCHEMAS_DIR",  # the image's bundled schemas; not settable in the chart
    "SPORTRIX_CA_FILE",
    "SPORTRIX_CLIENT_CERT_FILE",
    "SPORTRIX_CLIENT_KEY_FILE",
    "SPORTRIX_PROXY_FILE",
    "INGESTER_SPOOL_DIR",  # from spool.enabled: the mounted volume
    "INGESTER_SPOOL_MAX_BYTES",  # spool.maxBytes, which also sizes the volume
}
#: Secret settings: only ever as files (their *_FILE twins above). A proxy URL may hold
#: credentials.
SECRET_SETTINGS = {"SPORTRIX_API_KEY", "KAFKA_SASL_PASSWORD", "SPORTRIX_PROXY"}

BASE: dict[str, Any] = {"kafka": {"bootstrapServers": "kafka-0.kafka:9092,kafka-1.kafka:9092"}}
SPOOL_DIR = "/var/spool/sportrix-ingester"
WORKLOADS = {"Deployment", "StatefulSet"}

VALUE_SETS: dict[str, dict[str, Any]] = {
    "default": BASE,
    "tls-sasl": {
        "kafka": {
            "bootstrapServers": "kafka.example.internal:9093",
            "securityProtocol": "SASL_SSL",
            "sasl": {"mechanism": "SCRAM-SHA-512", "username": "ingester"},
            "tls": {
                "ca": {"secretName": "kafka-ca", "key": "ca.crt"},
                "clientCert": {"secretName": "kafka-client-tls"},
            },
        },
        "credentials": {"apiKey": FAKE_API_KEY, "kafkaSaslPassword": FAKE_SASL_PASSWORD},
    },
    "tls-ca-configmap": {
        "kafka": {
            "bootstrapServers": "kafka:9093",
            "securityProtocol": "SSL",
            "tls": {"ca": {"configMapName": "kafka-ca-bundle", "key": "ca.pem"}},
        },
        "credentials": {"apiKey": FAKE_API_KEY},
    },
    "upstream-proxy-ca": {
        **BASE,
        "credentials": {"apiKey": FAKE_API_KEY},
        "upstream": {
            "proxy": {
                "httpsProxy": "http://proxy.corp.example:3128",
                "noProxy": ".svc,.cluster.local",
                "urlSecret": {"name": "egress-proxy", "key": "url"},
            },
            "tls": {
                "ca": {"configMapName": "corp-ca-bundle", "key": "ca.pem"},
                "clientCert": {"secretName": "sportrix-client-tls"},
            },
        },
    },
    "existing-secret": {
        "kafka": {
            "bootstrapServers": "kafka:9092",
            "securityProtocol": "SASL_PLAINTEXT",
            "sasl": {"mechanism": "PLAIN", "username": "ingester"},
        },
        "credentials": {"existingSecret": "sportrix-credentials"},
    },
    "monitoring": {
        **BASE,
        "credentials": {"existingSecret": "sportrix-credentials"},
        "metrics": {
            "serviceMonitor": {"enabled": True, "labels": {"release": "kube-prometheus"}},
            "prometheusRule": {
                "enabled": True,
                "labels": {"release": "kube-prometheus"},
                "runbookBaseUrl": RUNBOOK_BASE + "/",
            },
        },
        "grafana": {"dashboard": {"enabled": True, "annotations": {"grafana_folder": "Ingest"}}},
        "networkPolicy": {
            "enabled": True,
            "ingress": {
                "from": [
                    {"namespaceSelector": {"matchLabels": {"name": "monitoring"}}},
                ]
            },
            "egress": {"kafka": {"to": [{"ipBlock": {"cidr": "10.20.0.0/16"}}]}},
        },
    },
    "spool-off": {**BASE, "spool": {"enabled": False}},
    "spool-persistent": {
        **BASE,
        "replicaCount": 3,
        "spool": {
            "maxBytes": 4 * 1024**3,
            "persistence": {
                "enabled": True,
                "storageClass": "fast-ssd",
                "size": "5Gi",
                "annotations": {"backup.example.com/skip": "true"},
            },
        },
    },
    "three-replicas": {
        **BASE,
        "replicaCount": 3,
        "podDisruptionBudget": {"maxUnavailable": None, "minAvailable": 2},
        "config": {"INGESTER_FLUSH_TIMEOUT": 45, "INGESTER_MAX_MATCHES": 20000},
        "image": {
            "repository": "registry.example.com/sportrix-ingester",
            "digest": "sha256:" + "a" * 64,
        },
    },
}


def render(
    helm: Helm, values: dict[str, Any], version: str = KUBERNETES_VERSIONS[0]
) -> list[dict[str, Any]]:
    return helm.render(values, "--kube-version", version)


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = by_kind(docs, kind)
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


def settings_map(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """The ConfigMap of settings (not the dashboard's)."""
    (found,) = [
        d for d in by_kind(docs, "ConfigMap") if "grafana_dashboard" not in d["metadata"]["labels"]
    ]
    return found


def workload(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """The one Deployment or StatefulSet (with spool.persistence.enabled)."""
    (found,) = [d for d in docs if d["kind"] in WORKLOADS]
    return found


def pod_spec(docs: list[dict[str, Any]]) -> dict[str, Any]:
    spec: dict[str, Any] = workload(docs)["spec"]["template"]["spec"]
    return spec


def settings_env_names() -> set[str]:
    names = set()
    for field in Settings.model_fields.values():
        alias = field.validation_alias
        names.add(alias.choices[0])  # type: ignore[union-attr]
    return names


def schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((CHART / "values.schema.json").read_text(encoding="utf-8"))
    return loaded


# --------------------------------------------------------------------------- lint and validate


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_helm_lint_strict(helm: Helm, name: str) -> None:
    result = helm.run(
        "lint",
        "--strict",
        str(CHART),
        "--kube-version",
        KUBERNETES_VERSIONS[0],
        values=VALUE_SETS[name],
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[WARNING]" not in result.stdout, result.stdout
    assert "[ERROR]" not in result.stdout, result.stdout


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_rendered_manifests_are_valid_kubernetes(helm: Helm, name: str, version: str) -> None:
    docs = render(helm, VALUE_SETS[name], version)
    kinds = {d["kind"] for d in docs}
    assert {"Service", "ServiceAccount", "ConfigMap", "PodDisruptionBudget"} <= kinds
    assert len(kinds & WORKLOADS) == 1, kinds
    for doc in docs:
        if doc["kind"] in CRD_KINDS:
            continue
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{doc['kind']}/{doc['metadata']['name']} (k8s {version}): {exc.message}")


def test_the_validator_is_not_vacuous(helm: Helm) -> None:
    """Strict validation rejects an unknown field in the Deployment we render."""
    deployment = copy.deepcopy(one(render(helm, BASE), "Deployment"))
    deployment["spec"]["template"]["spec"]["containers"][0]["runAsRoot"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[0], strict=True)


# --------------------------------------------------------------------------- security


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_security_settings(helm: Helm, name: str) -> None:
    docs = render(helm, VALUE_SETS[name])
    spec = pod_spec(docs)
    pod = spec["securityContext"]
    assert pod["runAsNonRoot"] is True
    assert isinstance(pod["runAsUser"], int)
    assert pod["runAsUser"] > 0
    assert pod["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["automountServiceAccountToken"] is False
    assert spec["enableServiceLinks"] is False
    (container,) = spec["containers"]
    sc = container["securityContext"]
    assert sc["runAsNonRoot"] is True
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["privileged"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    # A writable /tmp on an emptyDir.
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]
    # Every other mount is read-only, but the spool's.
    for mount in container["volumeMounts"]:
        if mount["mountPath"] not in ("/tmp", SPOOL_DIR):
            assert mount.get("readOnly") is True, mount
    # The spool's volume is writable by the pod's group (a claim's files get fsGroup).
    assert isinstance(pod["fsGroup"], int)
    # Resources, probes.
    assert container["resources"]["requests"]["memory"]
    assert container["resources"]["limits"]["memory"]
    assert container["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    # No secret through the environment: no secretKeyRef, no envFrom secretRef, no secret names.
    for env in container.get("env", []):
        assert "secretKeyRef" not in env.get("valueFrom", {}), env
        assert env["name"] not in SECRET_SETTINGS
    for source in container["envFrom"]:
        assert "secretRef" not in source
    configmap = settings_map(docs)["data"]
    assert not SECRET_SETTINGS & set(configmap)
    # The instance id comes from the pod's name.
    (instance,) = [e for e in container["env"] if e["name"] == "INGESTER_INSTANCE_ID"]
    assert instance["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    # The ServiceAccount mounts no token either.
    assert one(docs, "ServiceAccount")["automountServiceAccountToken"] is False


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_termination_grace_exceeds_flush_timeout(helm: Helm, name: str) -> None:
    docs = render(helm, VALUE_SETS[name])
    flush = float(settings_map(docs)["data"].get("INGESTER_FLUSH_TIMEOUT", "20"))
    assert pod_spec(docs)["terminationGracePeriodSeconds"] >= flush + 5


def test_no_secret_value_in_any_rendered_manifest(helm: Helm) -> None:
    """The fake secrets appear nowhere in plain text, and base64-encoded only in the Secret."""
    for name, values in VALUE_SETS.items():
        result = helm.template(values, "--kube-version", KUBERNETES_VERSIONS[0])
        assert result.returncode == 0, result.stderr
        for secret in SECRETS:
            assert secret not in result.stdout, f"{name}: a secret value is in the output"
        encoded = {base64.b64encode(s.encode()).decode() for s in SECRETS}
        for doc in (d for d in yaml.safe_load_all(result.stdout) if d):
            if doc["kind"] == "Secret":
                continue
            text = yaml.safe_dump(doc)
            for value in encoded:
                assert value not in text, f"{name}: {doc['kind']} holds an encoded secret"
    # With the chart-created Secret, the values are there (encoded) and nowhere else.
    docs = render(helm, VALUE_SETS["tls-sasl"])
    data = one(docs, "Secret")["data"]
    decoded = {base64.b64decode(v).decode() for v in data.values()}
    assert decoded == set(SECRETS)


@pytest.mark.parametrize(
    "name", ["tls-sasl", "tls-ca-configmap", "existing-secret", "upstream-proxy-ca"]
)
def test_credentials_and_ca_are_mounted_files(helm: Helm, name: str) -> None:
    """Each *_FILE setting points into a read-only volume that provides exactly that file."""
    docs = render(helm, VALUE_SETS[name])
    data = settings_map(docs)["data"]
    spec = pod_spec(docs)
    (container,) = spec["containers"]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    files = {k: v for k, v in data.items() if k.endswith("_FILE")}
    expected = {
        "tls-sasl": {
            "SPORTRIX_API_KEY_FILE",
            "KAFKA_SASL_PASSWORD_FILE",
            "KAFKA_SSL_CA_FILE",
            "KAFKA_SSL_CERT_FILE",
            "KAFKA_SSL_KEY_FILE",
        },
        "tls-ca-configmap": {"SPORTRIX_API_KEY_FILE", "KAFKA_SSL_CA_FILE"},
        "existing-secret": {"SPORTRIX_API_KEY_FILE", "KAFKA_SASL_PASSWORD_FILE"},
        "upstream-proxy-ca": {
            "SPORTRIX_API_KEY_FILE",
            "SPORTRIX_CA_FILE",
            "SPORTRIX_CLIENT_CERT_FILE",
            "SPORTRIX_CLIENT_KEY_FILE",
            "SPORTRIX_PROXY_FILE",
        },
    }[name]
    assert set(files) == expected
    for setting, path in files.items():
        directory, filename = str(Path(path).parent), Path(path).name
        assert directory in mounts, f"{setting}: {directory} is not mounted"
        volume = volumes[mounts[directory]]
        source = volume.get("secret") or volume.get("configMap")
        assert source is not None, volume
        assert filename in {item["path"] for item in source["items"]}, (setting, volume)
        if setting in {
            "SPORTRIX_API_KEY_FILE",
            "KAFKA_SASL_PASSWORD_FILE",
            "KAFKA_SSL_KEY_FILE",
            "SPORTRIX_CLIENT_KEY_FILE",
            "SPORTRIX_PROXY_FILE",
        }:
            assert "secret" in volume, f"{setting} must come from a Secret"
    if name == "existing-secret":
        assert not by_kind(docs, "Secret"), "existingSecret: the chart must not create a Secret"
        assert volumes["credentials"]["secret"]["secretName"] == "sportrix-credentials"
    if name == "tls-ca-configmap":
        assert volumes["kafka-ca"]["configMap"]["name"] == "kafka-ca-bundle"
        assert volumes["kafka-ca"]["configMap"]["items"] == [{"key": "ca.pem", "path": "ca.crt"}]
    if name == "upstream-proxy-ca":
        assert volumes["upstream-ca"]["configMap"]["name"] == "corp-ca-bundle"
        assert volumes["upstream-ca"]["configMap"]["items"] == [{"key": "ca.pem", "path": "ca.crt"}]
        assert volumes["upstream-proxy"]["secret"]["secretName"] == "egress-proxy"
        assert volumes["upstream-proxy"]["secret"]["items"] == [{"key": "url", "path": "proxy-url"}]
        assert volumes["upstream-client"]["secret"]["secretName"] == "sportrix-client-tls"
        assert "KAFKA_SSL_CA_FILE" not in data  # the upstream's CA is not Kafka's
    if name == "tls-sasl":
        assert data["KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
        assert data["KAFKA_SASL_USERNAME"] == "ingester"
        assert data["KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"


def test_proxy_variables_reach_the_pod_and_the_default_sets_none(helm: Helm) -> None:
    (container,) = pod_spec(render(helm, VALUE_SETS["upstream-proxy-ca"]))["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["HTTPS_PROXY"] == "http://proxy.corp.example:3128"
    assert env["NO_PROXY"] == ".svc,.cluster.local"
    assert "HTTP_PROXY" not in env
    assert "SPORTRIX_PROXY" not in env  # the URL with credentials is a mounted file
    (default,) = pod_spec(render(helm, BASE))["containers"]
    names = {e["name"] for e in default["env"]}
    assert not names & {"HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY", "SPORTRIX_PROXY"}
    assert not {m["name"] for m in default["volumeMounts"]} & {
        "upstream-ca",
        "upstream-client",
        "upstream-proxy",
    }


# --------------------------------------------------------------------------- settings and rollout


def test_config_keys_match_the_daemon_settings(helm: Helm) -> None:
    """The chart knows every setting of ingester/settings.py, under its exact variable name."""
    configurable = set(schema()["properties"]["config"]["properties"])
    known = settings_env_names()
    covered = configurable | CHART_MANAGED | SECRET_SETTINGS
    assert covered == known, (
        f"settings the chart does not know (add them to values.schema.json config, README.md): "
        f"{sorted(known - covered)}; names the daemon does not have: {sorted(covered - known)}"
    )
    assert not configurable & (CHART_MANAGED | SECRET_SETTINGS)
    for name, values in VALUE_SETS.items():
        data = settings_map(render(helm, values))["data"]
        assert set(data) <= known, f"{name}: unknown variables {sorted(set(data) - known)}"
        assert all(isinstance(v, str) for v in data.values())


def test_config_values_render_as_the_daemon_reads_them(helm: Helm) -> None:
    values = {
        **BASE,
        "config": {
            "INGESTER_BUFFER_RECORDS": 1000000,
            "INGESTER_BACKOFF_BASE": 0.25,
            "INGESTER_CREATE_TOPICS": False,
            "INGESTER_FLUSH_TIMEOUT": 20,
            "INGESTER_COMPRESSION": "zstd",
            "INGESTER_COMPRESSION_LEVEL": 19,  # above lz4's and gzip's ranges, in zstd's
        },
    }
    data = settings_map(render(helm, values))["data"]
    assert data["INGESTER_BUFFER_RECORDS"] == "1000000"  # not 1e+06
    assert data["INGESTER_BACKOFF_BASE"] == "0.25"
    assert data["INGESTER_CREATE_TOPICS"] == "false"
    assert data["KAFKA_BOOTSTRAP_SERVERS"] == BASE["kafka"]["bootstrapServers"]
    assert data["INGESTER_HTTP_PORT"] == "9108"
    env = {k: v for k, v in data.items() if not k.endswith("_FILE")}
    settings = Settings(**{_field(k): v for k, v in env.items()})
    assert settings.buffer_records == 1_000_000
    assert settings.create_topics is False
    assert (settings.compression, settings.compression_level) == ("zstd", 19)


def _field(env: str) -> str:
    for name, field in Settings.model_fields.items():
        if field.validation_alias.choices[0] == env:  # type: ignore[union-attr]
            return name
    raise KeyError(env)


def test_config_change_rolls_the_pods(helm: Helm) -> None:
    def checksum(values: dict[str, Any]) -> str:
        annotations = one(render(helm, values), "Deployment")["spec"]["template"]["metadata"]
        value: str = annotations["annotations"]["checksum/config"]
        return value

    first = checksum(BASE)
    assert checksum(BASE) == first
    assert checksum({**BASE, "config": {"INGESTER_LOG_LEVEL": "DEBUG"}}) != first
    assert checksum({"kafka": {"bootstrapServers": "other:9092"}}) != first


def test_replicas_pdb_and_spread(helm: Helm) -> None:
    docs = render(helm, VALUE_SETS["three-replicas"])
    deployment = one(docs, "Deployment")
    assert deployment["spec"]["replicas"] == 3
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    pdb = one(docs, "PodDisruptionBudget")["spec"]
    assert pdb["minAvailable"] == 2
    assert "maxUnavailable" not in pdb
    assert pdb["selector"]["matchLabels"].items() <= pod_labels.items()
    spread = deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert {c["topologyKey"] for c in spread} == {
        "topology.kubernetes.io/zone",
        "kubernetes.io/hostname",
    }
    for constraint in spread:
        assert constraint["labelSelector"]["matchLabels"].items() <= pod_labels.items()
    assert deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 45 + 15
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == "registry.example.com/sportrix-ingester@sha256:" + "a" * 64
    service = one(docs, "Service")
    assert service["spec"]["selector"].items() <= pod_labels.items()


def test_default_image_is_the_app_version(helm: Helm) -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text(encoding="utf-8"))
    assert chart["appVersion"] == __version__
    image = pod_spec(render(helm, BASE))["containers"][0]["image"]
    assert image.endswith(f":{__version__}")


# --------------------------------------------------------------------------- disk spool


def _spool(docs: list[dict[str, Any]]) -> tuple[dict[str, str], dict[str, Any] | None]:
    """The spool's settings in the ConfigMap, and the container's mount of it (or None)."""
    data = settings_map(docs)["data"]
    settings = {k: v for k, v in data.items() if k.startswith("INGESTER_SPOOL_")}
    (container,) = pod_spec(docs)["containers"]
    mounts = [m for m in container["volumeMounts"] if m["mountPath"] == SPOOL_DIR]
    return settings, (mounts[0] if mounts else None)


def test_the_spool_is_an_emptydir_by_default(helm: Helm) -> None:
    docs = render(helm, BASE)
    settings, mount = _spool(docs)
    assert settings == {"INGESTER_SPOOL_DIR": SPOOL_DIR, "INGESTER_SPOOL_MAX_BYTES": "1073741824"}
    assert mount is not None
    assert mount.get("readOnly") is not True
    volumes = {v["name"]: v for v in pod_spec(docs)["volumes"]}
    # 1 GiB for the records, 64 MiB for the oldest and newest segments and the read position.
    assert volumes[mount["name"]] == {"name": mount["name"], "emptyDir": {"sizeLimit": "1088Mi"}}
    assert not by_kind(docs, "StatefulSet")
    # The daemon reads what the chart sets.
    parsed = Settings(**{_field(k): v for k, v in settings.items()})
    assert parsed.spool_dir == Path(SPOOL_DIR)
    assert parsed.spool_max_bytes == 1024**3


@pytest.mark.parametrize(
    ("max_bytes", "size_limit"),
    [(16 * 1024**2, "80Mi"), (512 * 1024**2 + 1, "577Mi"), (10 * 1024**3, "10304Mi")],
)
def test_the_spool_volume_follows_max_bytes(helm: Helm, max_bytes: int, size_limit: str) -> None:
    docs = render(helm, {**BASE, "spool": {"maxBytes": max_bytes}})
    settings, mount = _spool(docs)
    assert settings["INGESTER_SPOOL_MAX_BYTES"] == str(max_bytes)  # not 1.073741824e+09
    assert mount is not None
    volumes = {v["name"]: v for v in pod_spec(docs)["volumes"]}
    assert volumes[mount["name"]]["emptyDir"]["sizeLimit"] == size_limit


def test_no_spool_when_disabled(helm: Helm) -> None:
    docs = render(helm, VALUE_SETS["spool-off"])
    settings, mount = _spool(docs)
    assert settings == {}
    assert mount is None
    assert {v["name"] for v in pod_spec(docs)["volumes"]} == {"tmp"}
    assert one(docs, "Deployment")


def test_a_persistent_spool_makes_a_statefulset_with_a_claim_per_pod(helm: Helm) -> None:
    docs = render(helm, VALUE_SETS["spool-persistent"])
    assert not by_kind(docs, "Deployment")
    sts = one(docs, "StatefulSet")
    spec = sts["spec"]
    assert spec["replicas"] == 3
    assert spec["podManagementPolicy"] == "Parallel"
    assert spec["serviceName"] == one(docs, "Service")["metadata"]["name"]
    settings, mount = _spool(docs)
    assert settings["INGESTER_SPOOL_MAX_BYTES"] == str(4 * 1024**3)
    assert mount is not None
    # The mount is the claim template's, not a pod volume.
    assert mount["name"] not in {v["name"] for v in spec["template"]["spec"]["volumes"]}
    (claim,) = spec["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == mount["name"]
    assert claim["metadata"]["annotations"] == {"backup.example.com/skip": "true"}
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert claim["spec"]["storageClassName"] == "fast-ssd"
    assert claim["spec"]["resources"]["requests"]["storage"] == "5Gi"
    # Every selector still finds the pods; no ReplicaSet hash to spread by.
    pod_labels = spec["template"]["metadata"]["labels"]
    assert spec["selector"]["matchLabels"].items() <= pod_labels.items()
    assert one(docs, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"].items() <= (
        pod_labels.items()
    )
    assert one(docs, "Service")["spec"]["selector"].items() <= pod_labels.items()
    for constraint in spec["template"]["spec"]["topologySpreadConstraints"]:
        assert "matchLabelKeys" not in constraint
        assert constraint["labelSelector"]["matchLabels"].items() <= pod_labels.items()
    assert spec["template"]["spec"]["securityContext"]["fsGroup"] == 10001


@pytest.mark.parametrize(("storage_class", "expected"), [("", None), ("-", "")])
def test_spool_claim_storage_class(helm: Helm, storage_class: str, expected: str | None) -> None:
    values = {**BASE, "spool": {"persistence": {"enabled": True, "storageClass": storage_class}}}
    (claim,) = one(render(helm, values), "StatefulSet")["spec"]["volumeClaimTemplates"]
    assert claim["spec"].get("storageClassName") == expected
    assert claim["spec"]["resources"]["requests"]["storage"] == "1088Mi"


# --------------------------------------------------------------------------- monitoring


def test_monitoring_objects(helm: Helm) -> None:
    docs = render(helm, VALUE_SETS["monitoring"])
    service = one(docs, "Service")
    monitor = one(docs, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus"
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    assert monitor["spec"]["jobLabel"] == "app.kubernetes.io/name"
    assert service["metadata"]["labels"]["app.kubernetes.io/name"] == "sportrix-ingester"
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == "http"
    assert endpoint["path"] == "/metrics"
    assert service["spec"]["ports"][0]["name"] == "http"

    rule = one(docs, "PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    rules_file = yaml.safe_load((CHART / "files" / "alerts.rules.yml").read_text(encoding="utf-8"))
    verbatim = {"metrics": {"prometheusRule": {"enabled": True}}}
    assert one(render(helm, {**BASE, **verbatim}), "PrometheusRule")["spec"] == rules_file, (
        "without runbookBaseUrl the PrometheusRule spec must be files/alerts.rules.yml"
    )
    alerts = [r for group in rules_file["groups"] for r in group["rules"] if "alert" in r]
    assert alerts
    for alert in alerts:
        alert["annotations"]["runbook_url"] = (
            f"{RUNBOOK_BASE}/{alert['annotations']['runbook_url']}"
        )
    assert rule["spec"] == rules_file, "the spec must be the rules file with absolute runbook URLs"

    dashboards = [
        d for d in by_kind(docs, "ConfigMap") if d["metadata"]["name"].endswith("-dashboard")
    ]
    (dashboard,) = dashboards
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert dashboard["metadata"]["annotations"] == {"grafana_folder": "Ingest"}
    (content,) = dashboard["data"].values()
    expected = json.loads((CHART / "files" / "dashboard.json").read_text(encoding="utf-8"))
    assert json.loads(content) == expected

    # None of them by default.
    default_kinds = {d["kind"] for d in render(helm, BASE)}
    assert not default_kinds & (CRD_KINDS | {"NetworkPolicy"})


def test_network_policy(helm: Helm) -> None:
    docs = render(helm, VALUE_SETS["monitoring"])
    policy = one(docs, "NetworkPolicy")["spec"]
    pod_labels = one(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert policy["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert set(policy["policyTypes"]) == {"Ingress", "Egress"}
    (ingress,) = policy["ingress"]
    assert ingress["ports"] == [{"port": "http", "protocol": "TCP"}]
    assert ingress["from"] == [{"namespaceSelector": {"matchLabels": {"name": "monitoring"}}}]
    dns, kafka, upstream = policy["egress"]
    assert {p["port"] for p in dns["ports"]} == {53}
    assert {p["protocol"] for p in dns["ports"]} == {"UDP", "TCP"}
    assert kafka["to"] == [{"ipBlock": {"cidr": "10.20.0.0/16"}}]
    assert upstream["ports"] == [{"port": 443, "protocol": "TCP"}]
    for rule in policy["egress"]:
        assert rule["to"], "an egress rule without peers would allow every destination"


# --------------------------------------------------------------------------- refused values


#: Values refused through values.schema.json: `helm template`, `helm lint` and `helm install`
#: all fail, naming the offending value (and never echoing a secret).
REFUSED: dict[str, tuple[dict[str, Any] | None, str]] = {
    "missing bootstrap servers": (None, "bootstrapServers"),
    "empty bootstrap servers": ({"kafka": {"bootstrapServers": ""}}, "bootstrapServers"),
    "bootstrap server without port": ({"kafka": {"bootstrapServers": "kafka"}}, "bootstrapServers"),
    "negative replicas": ({**BASE, "replicaCount": -1}, "replicaCount"),
    "unknown top-level key": ({**BASE, "replicas": 3}, "replicas"),
    "unknown nested key": (
        {"kafka": {**BASE["kafka"], "bootstrapServer": "typo:9092"}},
        "bootstrapServer",
    ),
    "unknown setting": (
        {**BASE, "config": {"INGESTER_NO_SUCH_THING": "1"}},
        "INGESTER_NO_SUCH_THING",
    ),
    "secret in config": (
        {**BASE, "config": {"SPORTRIX_API_KEY": FAKE_API_KEY}},
        "SPORTRIX_API_KEY",
    ),
    "proxy URL in config": (
        {**BASE, "config": {"SPORTRIX_PROXY": "http://proxy:3128"}},
        "SPORTRIX_PROXY",
    ),
    "proxy credentials in a plain value": (
        {
            **BASE,
            "upstream": {
                "proxy": {"httpsProxy": f"http://u:{FAKE_PROXY_PASSWORD}@proxy.corp.example:3128"}
            },
        },
        "/upstream/proxy/httpsProxy",
    ),
    "bad setting value": ({**BASE, "config": {"INGESTER_LOG_LEVEL": "LOUD"}}, "INGESTER_LOG_LEVEL"),
    "lz4 level above 17 (lz4 by default)": (
        {**BASE, "config": {"INGESTER_COMPRESSION_LEVEL": 18}},
        "INGESTER_COMPRESSION_LEVEL",
    ),
    "gzip level above 9": (
        {**BASE, "config": {"INGESTER_COMPRESSION": "gzip", "INGESTER_COMPRESSION_LEVEL": 12}},
        "INGESTER_COMPRESSION_LEVEL",
    ),
    "a level for snappy": (
        {**BASE, "config": {"INGESTER_COMPRESSION": "snappy", "INGESTER_COMPRESSION_LEVEL": 1}},
        "INGESTER_COMPRESSION_LEVEL",
    ),
    "SASL without username": (
        {
            "kafka": {**BASE["kafka"], "securityProtocol": "SASL_SSL"},
            "credentials": {"kafkaSaslPassword": FAKE_SASL_PASSWORD},
        },
        "/kafka/sasl/username",
    ),
    "SASL without password": (
        {"kafka": {**BASE["kafka"], "securityProtocol": "SASL_SSL", "sasl": {"username": "u"}}},
        "kafkaSaslPassword",
    ),
    "existingSecret and inline key": (
        {**BASE, "credentials": {"existingSecret": "s", "apiKey": FAKE_API_KEY}},
        "/credentials/apiKey",
    ),
    "CA without TLS": (
        {**BASE, "kafka": {**BASE["kafka"], "tls": {"ca": {"secretName": "ca"}}}},
        "/kafka/tls/ca/secretName",
    ),
    "runbook base that is not a URL": (
        {**BASE, "metrics": {"prometheusRule": {"enabled": True, "runbookBaseUrl": "docs/"}}},
        "/metrics/prometheusRule/runbookBaseUrl",
    ),
    "spool below one segment": ({**BASE, "spool": {"maxBytes": 1024**2}}, "/spool/maxBytes"),
    "spool size as text": ({**BASE, "spool": {"maxBytes": "1GiB"}}, "/spool/maxBytes"),
    "spool directory in config": (
        {**BASE, "config": {"INGESTER_SPOOL_DIR": "/data"}},
        "INGESTER_SPOOL_DIR",
    ),
    "spool claim size not a quantity": (
        {**BASE, "spool": {"persistence": {"enabled": True, "size": "lots"}}},
        "/spool/persistence/size",
    ),
    "network policy without brokers": (
        {**BASE, "networkPolicy": {"enabled": True}},
        "/networkPolicy/egress/kafka/to",
    ),
}

#: Cross-value checks a JSON schema cannot express, made by the templates with `fail`:
#: `helm template`/`helm install` fail; `helm lint` only reports them (it renders in lint mode,
#: where `fail` is logged), so the test asserts it reports the message.
REFUSED_BY_TEMPLATE: dict[str, tuple[dict[str, Any], str]] = {
    "grace below flush timeout": (
        {**BASE, "config": {"INGESTER_FLUSH_TIMEOUT": 30}, "terminationGracePeriodSeconds": 30},
        "terminationGracePeriodSeconds (30) must be at least INGESTER_FLUSH_TIMEOUT + 5",
    ),
    "upstream CA from a Secret and a ConfigMap": (
        {**BASE, "upstream": {"tls": {"ca": {"secretName": "a", "configMapName": "b"}}}},
        "upstream.tls.ca: set secretName or configMapName, not both",
    ),
    "persistence without a spool": (
        {**BASE, "spool": {"enabled": False, "persistence": {"enabled": True}}},
        "spool.persistence.enabled needs spool.enabled",
    ),
    "PDB with both bounds": (
        {**BASE, "podDisruptionBudget": {"maxUnavailable": 1, "minAvailable": 1}},
        "set exactly one of maxUnavailable and minAvailable",
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_refused_values(helm: Helm, case: str) -> None:
    values, fragment = REFUSED[case]
    for command in (["template", "ingest", str(CHART)], ["lint", "--strict", str(CHART)]):
        result = helm.run(*command, "--kube-version", KUBERNETES_VERSIONS[0], values=values)
        output = result.stdout + result.stderr
        assert result.returncode != 0, f"{case}: helm {command[0]} accepted it"
        assert "schema" in output, f"{case}: not refused by values.schema.json:\n{output}"
        assert fragment in output, f"{case}: {fragment!r} not in:\n{output}"
        for secret in SECRETS:
            assert secret not in output


@pytest.mark.parametrize("case", sorted(REFUSED_BY_TEMPLATE))
def test_refused_by_template_checks(helm: Helm, case: str) -> None:
    values, message = REFUSED_BY_TEMPLATE[case]
    result = helm.template(values, "--kube-version", KUBERNETES_VERSIONS[0])
    assert result.returncode != 0, f"{case}: helm template accepted it"
    assert message in result.stderr
    lint = helm.run("lint", "--strict", str(CHART), "--kube-version", "1.29.0", values=values)
    assert message in lint.stdout + lint.stderr


# --------------------------------------------------------------------------- documentation


def _schema_paths(node: dict[str, Any], prefix: str = "") -> set[str]:
    paths = set()
    for key, sub in node.get("properties", {}).items():
        path = f"{prefix}{key}"
        if key == "global":
            continue
        paths.add(path)
        if sub.get("type") == "object" and sub.get("properties"):
            paths |= _schema_paths(sub, path + ".")
    return paths


def _free_form_paths(node: dict[str, Any], prefix: str = "") -> set[str]:
    """Paths of objects whose content the schema leaves open (Kubernetes types, maps)."""
    out = set()
    for key, sub in node.get("properties", {}).items():
        path = f"{prefix}{key}"
        if sub.get("type") == "object" and not sub.get("properties"):
            out.add(path)
        elif sub.get("properties"):
            out |= _free_form_paths(sub, path + ".")
    return out


def test_readme_lists_every_value() -> None:
    readme = (CHART / "README.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"^\| `([^`]+)` \|", readme, flags=re.MULTILINE))
    paths = _schema_paths(schema())
    missing = sorted(
        p for p in paths if p not in listed and not any(x.startswith(p + ".") for x in listed)
    )
    assert not missing, f"values missing from helm/sportrix-ingester/README.md: {missing}"
    unknown = sorted(listed - paths)
    assert not unknown, f"README lists values the chart does not have: {unknown}"


def test_every_default_value_is_in_the_schema() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))

    def leaves(node: Any, prefix: str = "") -> set[str]:
        if isinstance(node, dict) and node:
            out: set[str] = set()
            for key, sub in node.items():
                out |= leaves(sub, f"{prefix}{key}.")
            return out
        return {prefix.rstrip(".")}

    paths = _schema_paths(schema())
    free = _free_form_paths(schema())

    def covered(path: str) -> bool:
        parts = path.split(".")
        return path in paths or any(".".join(parts[:i]) in free for i in range(1, len(parts)))

    stray = sorted(p for p in leaves(values) if not covered(p))
    assert not stray, stray
