"""Pairs each sport's converter with its encoder: the per-sport codecs of the pipeline."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping

from ingester.convert import ConverterSetupError, SportConverter, ValidationFailed, load_converters
from ingester.encode import EncodeFailed, RecordEncoder, SchemaLoadError, build_encoder
from ingester.pipeline import SportCodec
from ingester.settings import ConfigError, Settings
from ingester.upstream.frames import Stage

__all__ = ["SportCodecImpl", "build_codecs", "classify_error"]

log = logging.getLogger(__name__)


class SportCodecImpl:
    """One sport: validate+convert with its converter, encode with its schema's encoder."""

    __slots__ = ("convert", "encode", "schema_name", "sport")

    def __init__(self, converter: SportConverter, encoder: RecordEncoder) -> None:
        self.sport = converter.sport
        self.schema_name = converter.schema_name
        self.convert = converter.convert
        self.encode = encoder.encode


def build_codecs(
    settings: Settings,
) -> tuple[Mapping[str, SportCodec], Callable[[], Awaitable[None]]]:
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
    codecs: dict[str, SportCodec] = {
        converter.sport: SportCodecImpl(converter, encoder.encoder_for(converter.schema_name))
        for converter in converters
    }
    return codecs, encoder.prepare


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
