"""Load the ``.avsc`` files and compute each schema's single-object-encoding fingerprint.

The schemas directory is, in order: the one given, the wheel's package data
``ingester/_schemas`` (the top-level ``schemas/`` folder, mapped there at build time), or the
repository's top-level ``schemas/`` (an editable install or a checkout).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastavro
from fastavro.schema import fingerprint, to_parsing_canonical_form

from ingester.encode.errors import SchemaLoadError

__all__ = ["AvroSchema", "find_schemas_dir", "load_schema", "load_schemas", "parse_avro_schema"]

_PACKAGE_DIR = Path(__file__).resolve().parent.parent
_CANDIDATE_DIRS = (_PACKAGE_DIR / "_schemas", _PACKAGE_DIR.parent / "schemas")


@dataclass(frozen=True, slots=True)
class AvroSchema:
    """One parsed Avro record schema and its identity on the wire."""

    #: Full record name, e.g. ``com.sportrix.livescores.SoccerMatchState``.
    name: str
    #: The schema as written in its ``.avsc`` file (docs included).
    definition: dict[str, Any]
    #: The fastavro-parsed form, for the writer and reader.
    parsed: dict[str, Any]
    #: Parsing Canonical Form (Avro spec), the input of the fingerprint.
    canonical_form: str
    #: CRC-64-AVRO of the canonical form, as the 8 bytes that follow ``C3 01`` (little-endian).
    fingerprint: bytes

    @property
    def fingerprint_int(self) -> int:
        """The fingerprint as the unsigned 64-bit number the Avro spec's algorithm returns."""
        return int.from_bytes(self.fingerprint, "little")


def parse_avro_schema(definition: dict[str, Any]) -> AvroSchema:
    """Parse a record schema given as JSON data; raise :class:`SchemaLoadError` if invalid."""
    try:
        parsed = fastavro.parse_schema(definition)
        canonical_form = to_parsing_canonical_form(parsed)
    except Exception as exc:  # fastavro raises several unrelated types for a bad schema
        raise SchemaLoadError(f"invalid Avro schema: {exc}") from exc
    if not isinstance(parsed, dict) or parsed.get("type") != "record":
        raise SchemaLoadError("top-level Avro schema must be a record")
    # fastavro renders CRC-64-AVRO as the hex of the little-endian bytes (its "int" test
    # vector is 8f5c393f1ad57572, the spec's 0x7275d51a3f395c8f); tests check this.
    fp = bytes.fromhex(fingerprint(canonical_form, "CRC-64-AVRO"))
    return AvroSchema(str(parsed["name"]), definition, parsed, canonical_form, fp)


def load_schema(path: Path) -> AvroSchema:
    """Read and parse one ``.avsc`` file; raise :class:`SchemaLoadError` naming it if invalid."""
    try:
        definition = json.loads(path.read_text(encoding="utf-8"))
        return parse_avro_schema(definition)
    except (OSError, ValueError, SchemaLoadError) as exc:
        raise SchemaLoadError(f"{path}: {exc}") from exc


def find_schemas_dir(schemas_dir: Path | None = None) -> Path:
    """The schemas directory: ``schemas_dir`` if given, else the installed or checkout copy."""
    if schemas_dir is not None:
        if not schemas_dir.is_dir():
            raise SchemaLoadError(f"schemas directory not found: {schemas_dir}")
        return schemas_dir
    for candidate in _CANDIDATE_DIRS:
        if candidate.is_dir():
            return candidate
    raise SchemaLoadError(f"no schemas directory: looked in {', '.join(map(str, _CANDIDATE_DIRS))}")


def load_schemas(schemas_dir: Path | None = None) -> dict[str, AvroSchema]:
    """Every ``*.avsc`` of the schemas directory, keyed by file stem (the sport)."""
    directory = find_schemas_dir(schemas_dir)
    schemas = {path.stem: load_schema(path) for path in sorted(directory.glob("*.avsc"))}
    names = [schema.name for schema in schemas.values()]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise SchemaLoadError(f"{directory}: record name defined twice: {', '.join(duplicates)}")
    return schemas
