"""Daemon configuration: environment variables, each also a command-line flag.

The environment variable names are the outside contract (``docs`` and the Helm chart use
them). The flag for a variable is its name in lower case with dashes, without the
``INGESTER_``/``SPORTRIX_`` prefix: ``INGESTER_TOPIC`` is ``--topic``, ``SPORTRIX_API_KEY_FILE``
is ``--api-key-file``, ``KAFKA_BOOTSTRAP_SERVERS`` is ``--kafka-bootstrap-servers``.

A missing or invalid setting raises :class:`ConfigError`, whose message is one line naming
the variable at fault and never echoing a secret value.
"""

from __future__ import annotations

import argparse
import socket
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    AliasChoices,
    ByteSize,
    Field,
    SecretStr,
    ValidationError,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = [
    "COMPRESSION_LEVELS",
    "KAFKA_FIELDS",
    "SPOOL_MIN_BYTES",
    "ConfigError",
    "KafkaSecurity",
    "Settings",
    "add_setting_flags",
    "load_settings",
]

_FLAG_PREFIXES = ("INGESTER_", "SPORTRIX_")
#: The smallest ``INGESTER_SPOOL_MAX_BYTES``: one segment file of the spool's store (its unit
#: of creation and deletion); a smaller spool would hold less than a minute of a busy
#: replica's records, which the memory buffer is for.
SPOOL_MIN_BYTES = 16 * 1024 * 1024
#: Valid ``INGESTER_COMPRESSION_LEVEL`` values per codec: Kafka's producer ranges (zstd's
#: negative levels left out); snappy and none have no levels.
COMPRESSION_LEVELS: dict[str, range] = {
    "lz4": range(1, 18),
    "gzip": range(1, 10),
    "zstd": range(1, 23),
}


class ConfigError(Exception):
    """A setting is missing or invalid; ``str()`` is one line naming the variable."""


class KafkaSecurity(StrEnum):
    """Kafka ``security.protocol`` values."""

    PLAINTEXT = "PLAINTEXT"
    SSL = "SSL"
    SASL_PLAINTEXT = "SASL_PLAINTEXT"
    SASL_SSL = "SASL_SSL"


def _env(name: str, **kwargs: Any) -> Any:
    """A field read from environment variable ``name`` (and the field's own name)."""
    return Field(validation_alias=AliasChoices(name), **kwargs)


class Settings(BaseSettings):
    """Every setting of ``sportrix-ingester run``; see the README's configuration table."""

    model_config = SettingsConfigDict(
        env_prefix="",
        case_sensitive=True,
        populate_by_name=True,
        extra="ignore",
        frozen=True,
    )

    # Upstream
    url: str = _env("SPORTRIX_URL", default="wss://scores.sportrixdata.com/v1/stream")
    api_key: SecretStr | None = _env("SPORTRIX_API_KEY", default=None)
    api_key_file: Path | None = _env("SPORTRIX_API_KEY_FILE", default=None)
    subscriptions_per_connection: int = _env(
        "INGESTER_SUBSCRIPTIONS_PER_CONNECTION", default=400, ge=1, le=100_000
    )
    subscribe_rate: float = _env("INGESTER_SUBSCRIBE_RATE", default=1000.0, gt=0)
    idle_timeout: float = _env("INGESTER_IDLE_TIMEOUT", default=60.0, gt=30)
    backoff_base: float = _env("INGESTER_BACKOFF_BASE", default=0.5, gt=0)
    backoff_cap: float = _env("INGESTER_BACKOFF_CAP", default=30.0, gt=0)
    backoff_reset_after: float = _env("INGESTER_BACKOFF_RESET_AFTER", default=60.0, ge=0)
    auth_backoff: float = _env("INGESTER_AUTH_BACKOFF", default=60.0, gt=0)
    refused_retry: float = _env("INGESTER_REFUSED_RETRY", default=300.0, gt=0)
    subscribe_timeout: float = _env("INGESTER_SUBSCRIBE_TIMEOUT", default=30.0, gt=0)
    ca_file: Path | None = _env("SPORTRIX_CA_FILE", default=None)
    client_cert_file: Path | None = _env("SPORTRIX_CLIENT_CERT_FILE", default=None)
    client_key_file: Path | None = _env("SPORTRIX_CLIENT_KEY_FILE", default=None)
    tls_min_version: Literal["1.2", "1.3"] = _env("SPORTRIX_TLS_MIN_VERSION", default="1.2")
    proxy: SecretStr | None = _env("SPORTRIX_PROXY", default=None)  # may hold credentials
    proxy_file: Path | None = _env("SPORTRIX_PROXY_FILE", default=None)

    # Kafka
    kafka_bootstrap_servers: str = _env("KAFKA_BOOTSTRAP_SERVERS", default="localhost:9092")
    kafka_security_protocol: KafkaSecurity = _env(
        "KAFKA_SECURITY_PROTOCOL", default=KafkaSecurity.PLAINTEXT
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = _env(
        "KAFKA_SASL_MECHANISM", default="SCRAM-SHA-512"
    )
    kafka_sasl_username: str | None = _env("KAFKA_SASL_USERNAME", default=None)
    kafka_sasl_password: SecretStr | None = _env("KAFKA_SASL_PASSWORD", default=None)
    kafka_sasl_password_file: Path | None = _env("KAFKA_SASL_PASSWORD_FILE", default=None)
    kafka_ssl_ca_file: Path | None = _env("KAFKA_SSL_CA_FILE", default=None)
    kafka_ssl_cert_file: Path | None = _env("KAFKA_SSL_CERT_FILE", default=None)
    kafka_ssl_key_file: Path | None = _env("KAFKA_SSL_KEY_FILE", default=None)
    kafka_ssl_check_hostname: bool = _env("KAFKA_SSL_CHECK_HOSTNAME", default=True)

    # Topics and encoding
    topic: str = _env("INGESTER_TOPIC", default="live-scores", min_length=1)
    config_topic: str = _env("INGESTER_CONFIG_TOPIC", default="live-scores-config", min_length=1)
    dlq_topic: str = _env("INGESTER_DLQ_TOPIC", default="live-scores-dlq", min_length=1)
    schema_registry_url: str | None = _env("SCHEMA_REGISTRY_URL", default=None)
    schemas_dir: Path | None = _env("INGESTER_SCHEMAS_DIR", default=None)

    # Producer
    buffer_records: int = _env("INGESTER_BUFFER_RECORDS", default=20_000, ge=1)
    # 0: adaptive, the sink sends as soon as Kafka answered its previous round.
    linger_ms: int = _env("INGESTER_LINGER_MS", default=0, ge=0)
    compression: Literal["none", "gzip", "lz4", "zstd", "snappy"] = _env(
        "INGESTER_COMPRESSION", default="lz4"
    )
    compression_level: int | None = _env("INGESTER_COMPRESSION_LEVEL", default=None)
    flush_timeout: float = _env("INGESTER_FLUSH_TIMEOUT", default=20.0, gt=0)

    # Disk spool (unset directory: none, records wait in memory only)
    spool_dir: Path | None = _env("INGESTER_SPOOL_DIR", default=None)
    spool_max_bytes: ByteSize = _env("INGESTER_SPOOL_MAX_BYTES", default=ByteSize(1024**3))
    spool_sync_interval: float = _env("INGESTER_SPOOL_SYNC_INTERVAL", default=1.0, gt=0)

    # Control plane
    instance_id: str = _env("INGESTER_INSTANCE_ID", default_factory=socket.gethostname)
    group_id: str = _env("INGESTER_GROUP_ID", default="sportrix-ingester", min_length=1)
    create_topics: bool = _env("INGESTER_CREATE_TOPICS", default=True)
    config_partitions: int = _env("INGESTER_CONFIG_PARTITIONS", default=12, ge=1)
    topic_partitions: int = _env("INGESTER_TOPIC_PARTITIONS", default=12, ge=1)
    replication_factor: int | None = _env("INGESTER_REPLICATION_FACTOR", default=None, ge=1)
    max_matches: int = _env("INGESTER_MAX_MATCHES", default=5000, ge=1)
    retire_after: float = _env("INGESTER_RETIRE_AFTER", default=600.0, ge=0)
    session_timeout_ms: int = _env("INGESTER_SESSION_TIMEOUT_MS", default=10_000, ge=1000)

    # Operations
    http_host: str = _env("INGESTER_HTTP_HOST", default="0.0.0.0")  # every interface: a pod
    http_port: int = _env("INGESTER_HTTP_PORT", default=9108, ge=0, le=65535)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = _env(
        "INGESTER_LOG_LEVEL", default="INFO"
    )
    log_format: Literal["auto", "json", "text"] = _env("INGESTER_LOG_FORMAT", default="auto")
    event_loop: Literal["uvloop", "asyncio"] = _env("INGESTER_EVENT_LOOP", default="uvloop")

    @field_validator("url")
    @classmethod
    def _websocket_url(cls, value: str) -> str:
        if not value.startswith(("ws://", "wss://")):
            raise ValueError("must start with ws:// or wss://")
        return value

    @field_validator("kafka_bootstrap_servers")
    @classmethod
    def _host_port_list(cls, value: str) -> str:
        servers = [s.strip() for s in value.split(",") if s.strip()]
        if not servers:
            raise ValueError("must name at least one host:port")
        for server in servers:
            host, sep, port = server.rpartition(":")
            if not sep or not host or not port.isdigit():
                raise ValueError(f"{server!r} is not host:port")
        return ",".join(servers)

    @field_validator("spool_dir", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("spool_max_bytes", mode="wrap")
    @classmethod
    def _spool_size(cls, value: Any, handler: ValidatorFunctionWrapHandler) -> ByteSize:
        try:
            size: ByteSize = handler(value)
        except ValidationError:
            raise ValueError(
                "must be a number of bytes, or one with a unit: 512MiB, 1GiB"
            ) from None
        if size < SPOOL_MIN_BYTES:
            raise ValueError(f"must be at least 16MiB ({SPOOL_MIN_BYTES} bytes), one spool segment")
        return size

    @field_validator("schema_registry_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/") if value else None

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.backoff_cap < self.backoff_base:
            raise _FieldError("INGESTER_BACKOFF_CAP", "must not be below INGESTER_BACKOFF_BASE")
        levels = COMPRESSION_LEVELS.get(self.compression)
        if self.compression_level is not None and self.compression_level not in (levels or ()):
            raise _FieldError(
                "INGESTER_COMPRESSION_LEVEL",
                f"must be within {levels.start}..{levels.stop - 1} for {self.compression}"
                if levels
                else f"must be unset: {self.compression} has no levels",
            )
        for env, path in (
            ("SPORTRIX_API_KEY_FILE", self.api_key_file),
            ("SPORTRIX_CA_FILE", self.ca_file),
            ("SPORTRIX_CLIENT_CERT_FILE", self.client_cert_file),
            ("SPORTRIX_CLIENT_KEY_FILE", self.client_key_file),
            ("SPORTRIX_PROXY_FILE", self.proxy_file),
            ("KAFKA_SASL_PASSWORD_FILE", self.kafka_sasl_password_file),
            ("KAFKA_SSL_CA_FILE", self.kafka_ssl_ca_file),
            ("KAFKA_SSL_CERT_FILE", self.kafka_ssl_cert_file),
            ("KAFKA_SSL_KEY_FILE", self.kafka_ssl_key_file),
        ):
            if path is not None and not path.is_file():
                raise _FieldError(env, f"{path} is not a readable file")
        if self.client_key_file is not None and self.client_cert_file is None:
            raise _FieldError("SPORTRIX_CLIENT_KEY_FILE", "needs SPORTRIX_CLIENT_CERT_FILE")
        if self.proxy is not None and self.proxy_file is not None:
            raise _FieldError("SPORTRIX_PROXY", "set it or SPORTRIX_PROXY_FILE, not both")
        proxy_env = "SPORTRIX_PROXY_FILE" if self.proxy_file else "SPORTRIX_PROXY"
        try:
            proxy = self.read_proxy()
        except OSError:
            raise _FieldError(proxy_env, "cannot be read") from None
        if proxy not in ("auto", "none") and not proxy.startswith(("http://", "https://")):
            raise _FieldError(proxy_env, "must be auto, none, or an http(s):// URL")
        if self.kafka_security_protocol in (KafkaSecurity.SASL_PLAINTEXT, KafkaSecurity.SASL_SSL):
            if not self.kafka_sasl_username:
                raise _FieldError("KAFKA_SASL_USERNAME", "is required with SASL")
            if self.kafka_sasl_password is None and self.kafka_sasl_password_file is None:
                raise _FieldError(
                    "KAFKA_SASL_PASSWORD", "or KAFKA_SASL_PASSWORD_FILE is required with SASL"
                )
        return self

    @property
    def bootstrap_servers(self) -> list[str]:
        """``KAFKA_BOOTSTRAP_SERVERS`` as a list."""
        return self.kafka_bootstrap_servers.split(",")

    def check_run(self) -> None:
        """What only ``run`` needs: a key, and the library of the compression codec; raises
        :class:`ConfigError` naming the setting."""
        import aiokafka.codec  # the client library, only for the daemon

        if self.api_key is None and self.api_key_file is None:
            raise ConfigError("missing setting SPORTRIX_API_KEY (or SPORTRIX_API_KEY_FILE)")
        if not getattr(aiokafka.codec, f"has_{self.compression}", lambda: True)():
            raise ConfigError(
                f"invalid setting INGESTER_COMPRESSION: no library for {self.compression}"
            )

    def read_api_key(self) -> str | None:
        """The API key now: the file is re-read on every call, so a rotated Secret is seen."""
        if self.api_key_file is not None:
            return self.api_key_file.read_text(encoding="utf-8").strip() or None
        return self.api_key.get_secret_value() if self.api_key else None

    def read_proxy(self) -> str:
        """``SPORTRIX_PROXY``, or the content of ``SPORTRIX_PROXY_FILE``; ``auto`` when unset."""
        if self.proxy_file is not None:
            return self.proxy_file.read_text(encoding="utf-8").strip() or "auto"
        return self.proxy.get_secret_value() if self.proxy else "auto"

    def read_sasl_password(self) -> str | None:
        """The SASL password, from the file when one is configured."""
        if self.kafka_sasl_password_file is not None:
            return self.kafka_sasl_password_file.read_text(encoding="utf-8").strip()
        return self.kafka_sasl_password.get_secret_value() if self.kafka_sasl_password else None


class _FieldError(ValueError):
    """A cross-field check that failed, naming the environment variable at fault."""

    def __init__(self, env: str, message: str) -> None:
        super().__init__(f"{env}: {message}")
        self.env = env


def _env_name(field: str) -> str:
    alias = Settings.model_fields[field].validation_alias
    assert isinstance(alias, AliasChoices)
    first = alias.choices[0]
    assert isinstance(first, str)
    return first


def _flag(env: str) -> str:
    for prefix in _FLAG_PREFIXES:
        if env.startswith(prefix):
            env = env[len(prefix) :]
            break
    return "--" + env.lower().replace("_", "-")


#: The settings a Kafka client needs (for the operator sub-commands).
KAFKA_FIELDS = tuple(f for f in Settings.model_fields if f.startswith("kafka_"))


def add_setting_flags(parser: argparse.ArgumentParser, only: tuple[str, ...] | None = None) -> None:
    """Add one ``--flag`` per setting (or per field in ``only``); unset flags fall back to
    the environment."""
    group = parser.add_argument_group("settings (each also an environment variable)")
    for field in only or tuple(Settings.model_fields):
        env = _env_name(field)
        group.add_argument(
            _flag(env), dest=f"setting_{field}", default=None, metavar="VALUE", help=f"${env}"
        )


def load_settings(args: argparse.Namespace | None = None, **overrides: Any) -> Settings:
    """Build :class:`Settings` from flags in ``args``, ``overrides`` and the environment.

    Raises :class:`ConfigError` with one line that names the variable at fault.
    """
    values: dict[str, Any] = {}
    if args is not None:
        for field in Settings.model_fields:
            value = getattr(args, f"setting_{field}", None)
            if value is not None:
                values[field] = value
    values.update(overrides)
    try:
        return Settings(**values)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    """One line per the first error, naming the variable, never the (maybe secret) value."""
    error = exc.errors(include_input=False, include_url=False)[0]
    context = error.get("ctx", {}).get("error")
    if isinstance(context, _FieldError):
        return f"invalid setting {context}"
    location = error["loc"][0] if error["loc"] else ""
    env = _env_name(str(location)) if location in Settings.model_fields else str(location)
    message = error["msg"].removeprefix("Value error, ")
    return f"invalid setting {env}: {message}"
