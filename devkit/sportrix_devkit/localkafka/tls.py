"""Test certificates for the broker's secured listener, made with the ``openssl`` CLI.

Two unrelated self-signed CAs: one signs the broker's certificate (clients trust it), the
other signs nothing (a client trusting only it must reject the broker). Keys are EC P-256,
unencrypted PKCS#8 PEM, which Kafka 4 reads directly (``ssl.keystore.type=PEM``).
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from sportrix_devkit.localkafka.fetch import LocalKafkaError

__all__ = ["TlsFiles", "make_tls_files"]

_DAYS = "3650"
_EC_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


@dataclass(frozen=True)
class TlsFiles:
    """Paths of the generated PEM files."""

    ca_file: Path
    """The CA that signed the broker's certificate."""
    untrusted_ca_file: Path
    """An unrelated CA: trusting only this one must fail the TLS handshake."""
    server_keystore: Path
    """The broker's private key, certificate and CA, in one PEM file."""


def _openssl(*args: str, cwd: Path) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise LocalKafkaError("openssl not found on PATH; the secured listener needs it")
    proc = subprocess.run(
        [openssl, *args],
        check=False,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise LocalKafkaError(f"openssl {args[0]} failed: {proc.stderr.strip()}")


def _self_signed_ca(directory: Path, name: str, common_name: str) -> Path:
    _openssl(
        "req", "-x509", *_EC_KEY, "-days", _DAYS, "-subj", f"/CN={common_name}",
        "-keyout", f"{name}.key", "-out", f"{name}.pem",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=directory,
    )  # fmt: skip
    return directory / f"{name}.pem"


def make_tls_files(directory: Path) -> TlsFiles:
    """Create the CAs and the broker's certificate (for ``localhost``/``127.0.0.1``)."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = _self_signed_ca(directory, "ca", "sportrix-ingester local test CA")
    other = _self_signed_ca(directory, "untrusted-ca", "sportrix-ingester untrusted CA")
    (directory / "server.ext").write_text(
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
        "extendedKeyUsage=serverAuth\n"
        "keyUsage=critical,digitalSignature\n"
    )
    _openssl(
        "req", *_EC_KEY, "-subj", "/CN=localhost",
        "-keyout", "server.key", "-out", "server.csr",
        cwd=directory,
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", _DAYS, "-extfile", "server.ext", "-out", "server.crt",
        cwd=directory,
    )  # fmt: skip
    keystore = directory / "server-keystore.pem"
    keystore.write_text(
        "".join((directory / f).read_text() for f in ("server.key", "server.crt", "ca.pem"))
    )
    return TlsFiles(ca_file=ca, untrusted_ca_file=other, server_keystore=keystore)
