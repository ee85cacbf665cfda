"""Avro encoding of converted records, and decoding them back with ``schemas/`` alone."""

from ingester.encode.decoder import Decoded, Decoder
from ingester.encode.encoders import (
    RecordEncoder,
    RegistryEncoder,
    SingleObjectEncoder,
    ValueEncoder,
    build_encoder,
)
from ingester.encode.errors import DecodeFailed, EncodeFailed, RegistryError, SchemaLoadError
from ingester.encode.registry import SchemaRegistryClient
from ingester.encode.schemas import AvroSchema, find_schemas_dir, load_schemas

__all__ = [
    "AvroSchema",
    "DecodeFailed",
    "Decoded",
    "Decoder",
    "EncodeFailed",
    "RecordEncoder",
    "RegistryEncoder",
    "RegistryError",
    "SchemaLoadError",
    "SchemaRegistryClient",
    "SingleObjectEncoder",
    "ValueEncoder",
    "build_encoder",
    "find_schemas_dir",
    "load_schemas",
]
