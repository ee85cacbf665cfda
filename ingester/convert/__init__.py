"""Validate each sport's ``data`` and turn it into the record of ``schemas/<sport>.avsc``.

The pipeline calls :func:`load_converters` once, then per frame
``converters.get(sport).convert(op, data, received_at_ms)``.
"""

from ingester.convert.common import SportConverter, ValidationFailed
from ingester.convert.registry import Converters, ConverterSetupError, load_converters

__all__ = [
    "ConverterSetupError",
    "Converters",
    "SportConverter",
    "ValidationFailed",
    "load_converters",
]
