"""Pairs each sport's converter with its encoder: the per-sport codecs of the pipeline.

The fast way (a lazy decode, then the compiled writer alone) is the codecs' own business:
the pipeline asks :meth:`Codecs.fast_record` for a whole message and takes the checked way
(:meth:`SportCodecImpl.record`) when it answers ``None``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from typing import Any

from ingester.convert import ConverterSetupError, SportConverter, ValidationFailed, load_converters
from ingester.convert.lazy import LazyFrameDecoder
from ingester.encode import (
    EncodeFailed,
    RecordEncoder,
    SchemaLoadError,
    ValueEncoder,
    build_encoder,
)
from ingester.pipeline import FastRecord
from ingester.settings import ConfigError, Settings
from ingester.upstream.frames import DataFrame, Stage

__all__ = ["Codecs", "SportCodecImpl", "build_codecs", "classify_error", "codecs_for"]

log = logging.getLogger(__name__)


class SportCodecImpl:
    """One sport: validate+convert with its converter, encode with its schema's encoder.

    When the sport's shape allows it (:attr:`SportConverter.writer_validates`), a frame goes
    straight to the compiled writer, which checks every type as pydantic's strict mode would;
    a frame it refuses takes the checked way (pydantic, then fastavro), which gives the exact
    error. Both ways give the same bytes for a valid frame.
    """

    __slots__ = (
        "_convert",
        "_encode",
        "_encode_strict",
        "_unchecked",
        "schema_name",
        "shape",
        "sport",
    )

    def __init__(self, converter: SportConverter, encoder: RecordEncoder) -> None:
        self.sport = converter.sport
        self.schema_name = converter.schema_name
        self.shape = converter.shape
        self._convert = converter.convert
        self._encode = encoder.encode
        self._encode_strict = encoder.encode_strict
        self._unchecked = converter.unchecked if converter.writer_validates else None

    def record(
        self, op: str, data: dict[str, Any], received_at_ms: int, json_native: bool = False
    ) -> tuple[dict[str, Any], bytes]:
        """The Avro record of one frame's ``data`` and its encoded value.

        Raise :class:`ValidationFailed` or :class:`EncodeFailed` for a frame that cannot
        become a record. ``json_native``: ``data`` is exactly what ``orjson.loads``
        returned (no NaN, enum, tuple...); the writer may then reuse encoded arrays.
        """
        done = self.unchecked_record(op, data, received_at_ms, json_native)
        if done is not None:
            return done
        record = self._convert(op, data, received_at_ms)
        return record, self._encode(record)

    def unchecked_record(
        self, op: str, data: dict[str, Any], received_at_ms: int, json_native: bool
    ) -> tuple[dict[str, Any], bytes] | None:
        """As :meth:`record` by the compiled writer alone; ``None`` when it refuses ``data``
        (or the sport's shape does not allow it). The only way for a lazily decoded frame."""
        if self._unchecked is None:
            return None
        record = self._unchecked(op, data, received_at_ms)
        if record is None:
            return None
        value = self._encode_strict(record, json_native)
        return None if value is None else (record, value)


class Codecs(Mapping[str, SportCodecImpl]):
    """Every sport's codec by sport, and the fast way to a whole message's record.

    ``fast=False`` leaves every message to the checked way (tests compare the two ways).
    """

    def __init__(self, codecs: Mapping[str, SportCodecImpl], *, fast: bool = True) -> None:
        self._by_sport = dict(codecs)
        lazy = LazyFrameDecoder({sport: codec.shape for sport, codec in codecs.items()})
        self._decode: Callable[[bytes], DataFrame | None] = (
            lazy.decode if fast and lazy.enabled else _no_fast_way
        )

    def __getitem__(self, sport: str) -> SportCodecImpl:
        return self._by_sport[sport]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_sport)

    def __len__(self) -> int:
        return len(self._by_sport)

    def checked_only(self) -> Codecs:
        """The same codecs without the fast way."""
        return Codecs(self._by_sport, fast=False)

    def fast_record(self, raw: bytes, received_at_ms: int) -> FastRecord | None:
        """``raw``'s frame, codec, record and value when it is a data frame the lazy decoder
        and the compiled writer take as it is; ``None`` otherwise (nothing raised: the checked
        way meets the frame again, and gives its error)."""
        frame = self._decode(raw)
        if frame is None:
            return None
        codec = self._by_sport[frame.sport]  # the lazy decoder knows the codecs' sports only
        try:
            done = codec.unchecked_record(frame.op, frame.data, received_at_ms, True)
        except Exception:  # the checked way meets it again, and dead-letters the frame
            return None
        return None if done is None else (frame, codec, done[0], done[1])


def _no_fast_way(raw: bytes) -> None:
    """The decoder of codecs without a fast way: every message takes the checked way."""


def codecs_for(converters: Iterable[SportConverter], encoder: ValueEncoder) -> Codecs:
    """Each converter's codec, by sport, with its schema's encoder from ``encoder``."""
    return Codecs(
        {
            converter.sport: SportCodecImpl(converter, encoder.encoder_for(converter.schema_name))
            for converter in converters
        }
    )


def build_codecs(
    settings: Settings,
) -> tuple[Codecs, Callable[[], Awaitable[None]]]:
    """Every sport's codec, and the start-up step that prepares the encoders.

    Raises :class:`ConfigError` (naming ``INGESTER_SCHEMAS_DIR``) when the schemas or the
    sport modules do not load.
    """
    try:
        converters = load_converters(settings.schemas_dir)
    except (ConverterSetupError, SchemaLoadError, OSError) as exc:
        raise ConfigError(f"invalid setting INGESTER_SCHEMAS_DIR: {exc}") from None
    encoder = build_encoder(
        converters.schemas,
        topic=settings.topic,
        registry_url=settings.schema_registry_url,
    )
    return codecs_for(converters, encoder), encoder.prepare


def classify_error(exc: Exception) -> Stage:
    """The dead-letter stage of an exception raised while converting or encoding a frame.

    Anything unexpected is a converter bug: logged with its traceback and dead-lettered at
    ``convert``, so one odd frame never stops the stream.
    """
    if isinstance(exc, ValidationFailed):
        return "validate"
    if isinstance(exc, EncodeFailed):
        return "encode"
    log.error("converter failed unexpectedly", exc_info=exc)
    return "convert"
