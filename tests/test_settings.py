"""Settings: every variable documented, bad values exit 2 naming the variable, no secret leaks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ingester.cli import build_parser
from ingester.settings import ConfigError, Settings, _env_name, load_settings

ROOT = Path(__file__).resolve().parents[1]


def test_every_setting_is_in_the_readme_table() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [_env_name(f) for f in Settings.model_fields if f"`{_env_name(f)}" not in readme]
    assert missing == []


def test_help_lists_the_subcommands() -> None:
    help_text = build_parser().format_help()
    for command in ("run", "matches", "tail", "demo", "kafka"):
        assert command in help_text


def test_flags_override_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INGESTER_TOPIC", "from-env")
    args = build_parser().parse_args(["run", "--topic", "from-flag", "--http-port", "9200"])
    settings = load_settings(args)
    assert settings.topic == "from-flag"
    assert settings.http_port == 9200


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"INGESTER_HTTP_PORT": "70000"}, "INGESTER_HTTP_PORT"),
        ({"KAFKA_BOOTSTRAP_SERVERS": "no-port"}, "KAFKA_BOOTSTRAP_SERVERS"),
        ({"SPORTRIX_URL": "http://x"}, "SPORTRIX_URL"),
        ({"SPORTRIX_API_KEY_FILE": "/nonexistent/key"}, "SPORTRIX_API_KEY_FILE"),
        ({"INGESTER_IDLE_TIMEOUT": "10"}, "INGESTER_IDLE_TIMEOUT"),
        ({"INGESTER_COMPRESSION": "brotli"}, "INGESTER_COMPRESSION"),
        ({"INGESTER_EVENT_LOOP": "trio"}, "INGESTER_EVENT_LOOP"),
        ({"INGESTER_COMPRESSION_LEVEL": "18"}, "INGESTER_COMPRESSION_LEVEL"),  # lz4: 1..17
        (
            {"INGESTER_COMPRESSION": "gzip", "INGESTER_COMPRESSION_LEVEL": "0"},
            "INGESTER_COMPRESSION_LEVEL",
        ),
        (
            {"INGESTER_COMPRESSION": "snappy", "INGESTER_COMPRESSION_LEVEL": "1"},
            "INGESTER_COMPRESSION_LEVEL",
        ),
        (
            {"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_USERNAME": "u"},
            "KAFKA_SASL_PASSWORD",
        ),
        ({"INGESTER_BACKOFF_BASE": "10", "INGESTER_BACKOFF_CAP": "1"}, "INGESTER_BACKOFF_CAP"),
        ({"INGESTER_SPOOL_MAX_BYTES": "15MiB"}, "INGESTER_SPOOL_MAX_BYTES"),
        ({"INGESTER_SPOOL_MAX_BYTES": "lots"}, "INGESTER_SPOOL_MAX_BYTES"),
        ({"INGESTER_SPOOL_MAX_BYTES": "-1"}, "INGESTER_SPOOL_MAX_BYTES"),
        ({"INGESTER_SPOOL_SYNC_INTERVAL": "0"}, "INGESTER_SPOOL_SYNC_INTERVAL"),
    ],
)
def test_invalid_settings_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], named: str
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert named in message
    assert "\n" not in message


def test_the_spool_is_off_unless_a_directory_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings()
    assert settings.spool_dir is None
    assert settings.spool_max_bytes == 1024**3
    assert settings.spool_sync_interval == 1.0
    monkeypatch.setenv("INGESTER_SPOOL_DIR", "")  # an empty value (a template's) is unset
    assert load_settings().spool_dir is None


@pytest.mark.parametrize(
    ("value", "size"),
    [
        ("1073741824", 1024**3),
        ("16777216", 16 * 1024**2),
        ("512MiB", 512 * 1024**2),
        ("2GiB", 2 * 1024**3),
        ("1.5GiB", 3 * 512 * 1024**2),
        ("1GB", 10**9),  # decimal units as written
    ],
)
def test_spool_max_bytes_takes_bytes_or_a_unit(
    monkeypatch: pytest.MonkeyPatch, value: str, size: int
) -> None:
    monkeypatch.setenv("INGESTER_SPOOL_MAX_BYTES", value)
    assert load_settings().spool_max_bytes == size


def test_spool_flags(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("INGESTER_SPOOL_MAX_BYTES", "64MiB")
    args = build_parser().parse_args(
        ["run", "--spool-dir", str(tmp_path), "--spool-max-bytes", "2GiB",
         "--spool-sync-interval", "0.25"]
    )  # fmt: skip
    settings = load_settings(args)
    assert settings.spool_dir == tmp_path
    assert settings.spool_max_bytes == 2 * 1024**3
    assert settings.spool_sync_interval == 0.25


def test_run_exits_2_with_one_line_and_never_echoes_the_key(tmp_path: Path) -> None:
    secret = "sk_live_do_not_print_123456"
    result = subprocess.run(
        [sys.executable, "-m", "ingester", "run"],
        env={"SPORTRIX_API_KEY": secret, "INGESTER_HTTP_PORT": secret, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "INGESTER_HTTP_PORT" in lines[0]
    assert secret not in result.stderr + result.stdout


def test_run_without_a_key_exits_2_naming_it() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ingester", "run"],
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "SPORTRIX_API_KEY" in result.stderr.strip()
    assert len(result.stderr.strip().splitlines()) == 1


def test_run_refuses_a_compression_codec_whose_library_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("aiokafka.codec.has_snappy", lambda: False)
    settings = load_settings(api_key="k" * 16, compression="snappy")
    with pytest.raises(ConfigError, match=r"^invalid setting INGESTER_COMPRESSION: no library for"):
        settings.check_run()
    load_settings(api_key="k" * 16, compression="lz4").check_run()


def test_the_api_key_file_is_read_each_time(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("first\n")
    settings = load_settings(api_key_file=str(key_file))
    assert settings.read_api_key() == "first"
    key_file.write_text("second")
    assert settings.read_api_key() == "second"
