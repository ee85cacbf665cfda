"""Record encoders: Avro single-object encoding, or the Confluent registry wire format.

Build them once at start-up with :func:`build_encoder`, ``await prepare()``, then call the
synchronous ``encode`` on the hot path.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

import fastavro
from fastavro.validation import ValidationError, validate

from ingester.encode.compiled import BodyWriter, Unsupported, compile_writer
from ingester.encode.errors import EncodeFailed
from ingester.encode.registry import SchemaRegistryClient
from ingester.encode.schemas import AvroSchema

__all__ = [
    "REGISTRY_MAGIC",
    "SINGLE_OBJECT_MAGIC",
    "RecordEncoder",
    "RegistryEncoder",
    "SingleObjectEncoder",
    "ValueEncoder",
    "build_encoder",
    "registry_subject",
]

#: The two marker bytes of Avro single-object encoding.
SINGLE_OBJECT_MAGIC = b"\xc3\x01"
#: The magic byte of the Confluent registry wire format.
REGISTRY_MAGIC = b"\x00"


class RecordEncoder(Protocol):
    """Encodes records of one schema into Kafka values."""

    schema: AvroSchema

    async def prepare(self) -> None:
        """Do any start-up I/O; call once before :meth:`encode`."""

    def encode(self, record: Mapping[str, Any]) -> bytes:
        """The value bytes of ``record``; raise :class:`EncodeFailed` if Avro rejects it."""
        ...

    def encode_strict(self, record: Mapping[str, Any], json_native: bool = False) -> bytes | None:
        """The value bytes when the compiled writer, strict about Python types, takes
        ``record`` as it is; ``None`` otherwise (no compiled writer, or a value it refuses).
        ``json_native``: every value is of a type ``orjson.loads`` returns (see
        :class:`ingester.encode.compiled.BodyWriter`)."""
        ...


class _BodyEncoder:
    """Writes ``prefix + body`` into one reused buffer, compiled writer first, fastavro second."""

    def __init__(self, schema: AvroSchema, prefix: bytes) -> None:
        self.schema = schema
        self._buffer = bytearray(prefix)
        self._prefix_size = len(prefix)
        try:
            self._fast_writer: BodyWriter | None = compile_writer(schema.parsed)
        except Unsupported:
            self._fast_writer = None

    def _set_prefix(self, prefix: bytes) -> None:
        self._buffer = bytearray(prefix)
        self._prefix_size = len(prefix)

    def encode(self, record: Mapping[str, Any]) -> bytes:
        """The value bytes of ``record``; raise :class:`EncodeFailed` if Avro rejects it."""
        value = self.encode_strict(record)
        if value is None:  # let fastavro judge and write the record
            buffer = self._buffer
            del buffer[self._prefix_size :]
            buffer += self._checked_body(record)
            value = bytes(buffer)
        return value

    def encode_strict(self, record: Mapping[str, Any], json_native: bool = False) -> bytes | None:
        """The value bytes when the compiled writer takes ``record`` as it is, else ``None``."""
        writer = self._fast_writer
        if writer is None:
            return None
        buffer = self._buffer
        del buffer[self._prefix_size :]
        try:
            writer(buffer, record, json_native)
        except Exception:  # any refusal or surprise: the caller has a slower, checked way
            return None
        return bytes(buffer)

    def _checked_body(self, record: Mapping[str, Any]) -> bytes:
        """fastavro's validation (ranges, types, field paths) then its writer."""
        parsed = self.schema.parsed
        try:
            validate(record, parsed, raise_errors=True)
            body = io.BytesIO()
            fastavro.schemaless_writer(body, parsed, record)
        except ValidationError as exc:
            problems = "; ".join(" ".join(str(error).split()) for error in exc.errors)
            raise EncodeFailed(f"{self.schema.name}: {problems}") from None
        except Exception as exc:  # fastavro raises many types; the caller needs one
            detail = " ".join(str(exc).split())
            raise EncodeFailed(f"{self.schema.name}: {type(exc).__name__}: {detail}") from None
        return body.getvalue()


class SingleObjectEncoder(_BodyEncoder):
    """Avro single-object encoding: ``C3 01``, the 8-byte fingerprint (little-endian), body."""

    def __init__(self, schema: AvroSchema) -> None:
        super().__init__(schema, SINGLE_OBJECT_MAGIC + schema.fingerprint)

    async def prepare(self) -> None:
        """Nothing to do: the fingerprint is known from the schema alone."""


def registry_subject(topic: str, schema: AvroSchema) -> str:
    """TopicRecordNameStrategy: ``<topic>-<full record name>``."""
    return f"{topic}-{schema.name}"


class RegistryEncoder(_BodyEncoder):
    """Confluent wire format: ``00``, the 4-byte big-endian schema id, body."""

    def __init__(
        self,
        schema: AvroSchema,
        registry: SchemaRegistryClient,
        topic: str,
        *,
        auto_register: bool = True,
    ) -> None:
        super().__init__(schema, b"")
        self.subject = registry_subject(topic, schema)
        self.schema_id: int | None = None
        self._registry = registry
        self._auto_register = auto_register

    async def prepare(self) -> None:
        """Register the schema (or look it up) once and cache its id; raise RegistryError."""
        if self.schema_id is not None:
            return
        schema_id = await self._registry.schema_id(
            self.subject, self.schema.definition, register=self._auto_register
        )
        self._set_prefix(REGISTRY_MAGIC + schema_id.to_bytes(4, "big"))
        self.schema_id = schema_id

    def encode_strict(self, record: Mapping[str, Any], json_native: bool = False) -> bytes | None:
        """As :meth:`_BodyEncoder.encode_strict` (which :meth:`encode` calls first), once
        :meth:`prepare` has completed."""
        if self.schema_id is None:
            raise RuntimeError(f"RegistryEncoder for {self.subject}: prepare() was not awaited")
        return super().encode_strict(record, json_native)


class ValueEncoder:
    """The encoder of every schema, by full record name, and their shared registry client."""

    def __init__(
        self, encoders: Iterable[RecordEncoder], registry: SchemaRegistryClient | None = None
    ) -> None:
        self._by_name = {encoder.schema.name: encoder for encoder in encoders}
        self._registry = registry

    async def prepare(self) -> None:
        """Prepare every encoder (registers schemas when a registry is used)."""
        for encoder in self._by_name.values():
            await encoder.prepare()

    def encoder_for(self, schema_name: str) -> RecordEncoder:
        """The encoder of one schema; raise ``KeyError`` for a name not loaded."""
        return self._by_name[schema_name]

    def encode(self, schema_name: str, record: Mapping[str, Any]) -> bytes:
        """Encode ``record`` with the schema named ``schema_name``."""
        return self._by_name[schema_name].encode(record)

    async def close(self) -> None:
        """Release the registry client, if any."""
        if self._registry is not None:
            await self._registry.close()


def build_encoder(
    schemas: Iterable[AvroSchema],
    *,
    topic: str,
    registry_url: str | None = None,
    auto_register: bool = True,
) -> ValueEncoder:
    """Single-object encoders, or registry encoders when ``registry_url`` is set.

    ``topic`` names the registry subjects (``<topic>-<record name>``). Await
    :meth:`ValueEncoder.prepare` before encoding.
    """
    if registry_url is None:
        return ValueEncoder(SingleObjectEncoder(schema) for schema in schemas)
    registry = SchemaRegistryClient(registry_url)
    return ValueEncoder(
        (
            RegistryEncoder(schema, registry, topic, auto_register=auto_register)
            for schema in schemas
        ),
        registry,
    )
