"""Decode Kafka values back into records, with ``schemas/`` alone (or a schema registry).

Values written with an earlier release of a schema (``schemas/released/*.avsc``, see
``docs/schemas.md``) are found by their fingerprint too, and resolved to the current schema of
the same name, so a consumer reads every release in today's shape.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastavro

from ingester.encode.encoders import REGISTRY_MAGIC, SINGLE_OBJECT_MAGIC
from ingester.encode.errors import DecodeFailed
from ingester.encode.registry import SchemaRegistryClient
from ingester.encode.schemas import AvroSchema, find_schemas_dir, load_schema, load_schemas

__all__ = ["Decoded", "Decoder"]


@dataclass(frozen=True, slots=True)
class Decoded:
    """One decoded value: the writer schema's full name and the record."""

    schema_name: str
    record: dict[str, Any]


@dataclass(frozen=True, slots=True)
class _Reader:
    name: str
    parsed: Any
    #: The current schema, when ``parsed`` is an earlier release's (Avro schema resolution).
    resolved_to: Any = None


def _without_logical_types(schema: Any) -> Any:
    """A copy of a schema's JSON with every ``logicalType`` removed (timestamps stay ints)."""
    if isinstance(schema, dict):
        return {k: _without_logical_types(v) for k, v in schema.items() if k != "logicalType"}
    if isinstance(schema, list):
        return [_without_logical_types(item) for item in schema]
    return schema


def _reader(definition: Any, logical_types: bool) -> _Reader:
    parsed: Any = fastavro.parse_schema(
        definition if logical_types else _without_logical_types(definition)
    )
    return _Reader(str(parsed["name"]), parsed)


class Decoder:
    """Decodes single-object values by fingerprint, registry values by schema id.

    Timestamps come back as epoch milliseconds, exactly as the converter produced them, unless
    ``logical_types`` is set (then as ``datetime``).
    """

    def __init__(
        self,
        schemas_dir: Path | None = None,
        *,
        registry_url: str | None = None,
        logical_types: bool = False,
        extra_schemas: Iterable[AvroSchema] = (),
        registry: SchemaRegistryClient | None = None,
    ) -> None:
        """``extra_schemas``: known besides the directory's (a plugin sport's, for one);
        ``registry``: the client that serves schema ids (else one for ``registry_url``)."""
        self._logical_types = logical_types
        directory = find_schemas_dir(schemas_dir)
        current = {
            schema.name: schema for schema in (*extra_schemas, *load_schemas(directory).values())
        }
        self._by_fingerprint = {
            schema.fingerprint: _reader(schema.definition, logical_types)
            for schema in current.values()
        }
        for path in sorted((directory / "released").glob("*.avsc")):
            release = load_schema(path)
            now = current.get(release.name)
            if now is not None and release.fingerprint not in self._by_fingerprint:
                writer = _reader(release.definition, logical_types)
                reader = _reader(now.definition, logical_types).parsed
                self._by_fingerprint[release.fingerprint] = _Reader(
                    writer.name, writer.parsed, reader
                )
        self._by_registry_id: dict[int, _Reader] = {}
        if registry is None and registry_url:
            registry = SchemaRegistryClient(registry_url)
        self._registry = registry

    def decode(self, value: bytes) -> Decoded:
        """Decode a single-object value, or a registry value whose id is already known."""
        if value[:2] == SINGLE_OBJECT_MAGIC and len(value) >= 10:
            reader = self._by_fingerprint.get(value[2:10])
            if reader is None:
                raise DecodeFailed(
                    f"unknown schema fingerprint {value[2:10].hex()} (little-endian); "
                    "no .avsc in the schemas directory has it"
                )
            return self._read(reader, value, 10)
        if value[:1] == REGISTRY_MAGIC and len(value) >= 5:
            schema_id = int.from_bytes(value[1:5], "big")
            reader = self._by_registry_id.get(schema_id)
            if reader is None:
                hint = "use decode_async" if self._registry else "no registry URL given"
                raise DecodeFailed(f"registry schema id {schema_id} not known ({hint})")
            return self._read(reader, value, 5)
        raise DecodeFailed(f"not an Avro single-object or registry value: starts {value[:4].hex()}")

    async def decode_async(self, value: bytes) -> Decoded:
        """Like :meth:`decode`, fetching an unknown registry schema id from the registry first."""
        if self._registry is not None and value[:1] == REGISTRY_MAGIC and len(value) >= 5:
            schema_id = int.from_bytes(value[1:5], "big")
            if schema_id not in self._by_registry_id:
                definition = await self._registry.schema_definition(schema_id)
                self._by_registry_id[schema_id] = _reader(definition, self._logical_types)
        return self.decode(value)

    async def close(self) -> None:
        """Release the registry client, if any."""
        if self._registry is not None:
            await self._registry.close()

    @staticmethod
    def _read(reader: _Reader, value: bytes, offset: int) -> Decoded:
        body = io.BytesIO(value)
        body.seek(offset)
        try:
            record = fastavro.schemaless_reader(body, reader.parsed, reader.resolved_to)
        except Exception as exc:  # a corrupt body surfaces as several exception types
            raise DecodeFailed(f"{reader.name}: corrupt body: {type(exc).__name__}") from None
        if body.tell() != len(value) or not isinstance(record, dict):
            raise DecodeFailed(f"{reader.name}: body length does not match the schema")
        return Decoded(reader.name, record)
