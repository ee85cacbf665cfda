"""The compression level of the producer's record batches (Kafka's ``compression.<codec>.level``).

aiokafka compresses every batch at a fixed level per codec (lz4 9, which is LZ4HC; gzip 9;
zstd 3) and has no setting for it. LZ4HC costs about six times the CPU of LZ4's fast mode for
11 to 15 % fewer bytes on these records (``docs/benchmarks.md``), so the ingester compresses lz4
at level 1 by default, as librdkafka and franz-go (Redpanda Connect) do;
``INGESTER_COMPRESSION_LEVEL`` picks another level within Kafka's ranges.

The level is set where aiokafka's record-batch builders (the C extension and the pure-Python
fallback) look their encoder up: a module global of each, replaced by aiokafka's own encoder
with the level bound. Only the v2 batch format (Kafka 0.11 and later) is covered, the only one
the supported brokers speak. The setting is process-wide: every producer of the process
compresses at the level applied last.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable

import aiokafka.codec

from ingester.settings import COMPRESSION_LEVELS

__all__ = ["apply_compression_level"]

#: aiokafka's encoder of each codec with levels, the name of its level argument, and the
#: level when none is configured (LZ4's fast mode; aiokafka's own for the others).
_ENCODERS: dict[str, tuple[Callable[..., bytes], str, int]] = {
    "lz4": (aiokafka.codec.lz4_encode, "level", 1),
    "gzip": (aiokafka.codec.gzip_encode, "compresslevel", 9),
    "zstd": (aiokafka.codec.zstd_encode, "level", 3),
}
_BUILDER_MODULES = (
    "aiokafka.record.default_records",
    "aiokafka.record._crecords.default_records",
)


def apply_compression_level(codec: str, level: int | None) -> int | None:
    """Make the process's record batches compressed with ``codec`` use ``level`` (``None``:
    the default); return the level in effect, ``None`` for a codec without levels."""
    if codec not in _ENCODERS:
        if level is not None:
            raise ValueError(f"{codec} has no compression levels")
        return None
    encode, argument, default = _ENCODERS[codec]
    if level is None:
        level = default
    if level not in COMPRESSION_LEVELS[codec]:
        raise ValueError(f"no level {level} for {codec}")
    bound = functools.partial(encode, **{argument: level})
    for name in _BUILDER_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError:  # no C extension on this platform: the fallback is used
            continue
        if not hasattr(module, f"{codec}_encode"):  # aiokafka changed: the level would be lost
            raise RuntimeError(f"{name} has no {codec}_encode; the compression level needs work")
        setattr(module, f"{codec}_encode", bound)
    return level
