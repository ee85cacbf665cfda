"""Read ``live-scores`` from Python: the package's public, typed decoding API.

Every value names the schema that wrote it. A single-object encoded value (the default) starts
``C3 01`` and the CRC-64-AVRO fingerprint of a ``.avsc`` file in ``schemas/`` (or of a release
in ``schemas/released/``); a registry wire-format value (``SCHEMA_REGISTRY_URL``) starts ``00``
and a schema id the registry serves.
:class:`LiveScoresDecoder` picks the schema that way, decodes the body, and checks what the
ingester promises about the Kafka record around it: key = ``match_id``, ``schema`` header = the
writer schema's full name. ``sportrix-ingester tail`` is built on it; ``docs/consuming.md``
shows it in a complete consumer::

    decoder = LiveScoresDecoder()
    score = await decoder.decode_record(message)  # any aiokafka ConsumerRecord
    print(score.match_id, score.op, score.seq, score.record["score"])
    await decoder.close()
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ingester.convert.registry import plugin_schema_files
from ingester.encode import DecodeFailed, Decoder
from ingester.encode.schemas import load_schema

__all__ = ["DecodeFailed", "KafkaMessage", "LiveScore", "LiveScoresDecoder"]


class KafkaMessage(Protocol):
    """What :meth:`LiveScoresDecoder.decode_record` reads of a Kafka record (aiokafka's has it)."""

    @property
    def key(self) -> bytes | None:
        """The record's key."""

    @property
    def value(self) -> bytes | None:
        """The record's value."""

    @property
    def headers(self) -> Sequence[tuple[str, bytes]]:
        """The record's headers."""


@dataclass(frozen=True, slots=True)
class LiveScore:
    """One decoded record of ``live-scores``."""

    #: The match, from the key (equal to ``record["match_id"]``).
    match_id: int
    #: The writer schema's full name, e.g. ``com.sportrix.livescores.SoccerMatchState``.
    schema_name: str
    #: ``snapshot`` or ``update``.
    op: str
    #: The provider's sequence number (``None`` when the frame had none).
    seq: int | None
    #: Every field of the record, as the schema names them.
    record: dict[str, Any]


class LiveScoresDecoder(Decoder):
    """Decodes ``live-scores`` records with ``schemas/`` alone, or with a schema registry.

    ``LiveScoresDecoder(schemas_dir=None, *, registry_url=None, logical_types=False)``:
    ``schemas_dir`` is the folder of ``.avsc`` files (default: the bundled ``schemas/``),
    ``registry_url`` the registry that served the producer (for registry wire-format values),
    ``logical_types`` gives timestamps as ``datetime`` instead of epoch milliseconds. Call
    :meth:`close` when done (it releases the registry client). The schemas of plugin sports
    (``docs/schemas.md``, *adding a sport*) are known too.
    """

    def __init__(
        self,
        schemas_dir: Path | None = None,
        *,
        registry_url: str | None = None,
        logical_types: bool = False,
    ) -> None:
        plugins = [load_schema(path) for path in plugin_schema_files().values()]
        super().__init__(
            schemas_dir,
            registry_url=registry_url,
            logical_types=logical_types,
            extra_schemas=plugins,
        )

    async def decode_record(self, message: KafkaMessage) -> LiveScore:
        """Decode one Kafka record; raise :class:`DecodeFailed` (one line) when it is not one the
        ingester wrote: no value, an unknown schema, a corrupt body, or a key or ``schema``
        header that disagrees with the record."""
        if message.value is None:
            raise DecodeFailed("no value")
        decoded = await self.decode_async(message.value)
        record = decoded.record
        key = None if message.key is None else message.key.decode(errors="replace")
        if key != str(record["match_id"]):
            raise DecodeFailed(f"key {key!r} is not the record's match_id {record['match_id']}")
        header = dict(message.headers).get("schema")
        if header is not None and header.decode(errors="replace") != decoded.schema_name:
            raise DecodeFailed(
                f"schema header {header.decode(errors='replace')!r} is not the writer schema "
                f"{decoded.schema_name}"
            )
        return LiveScore(
            record["match_id"], decoded.schema_name, record["op"], record["seq"], record
        )
