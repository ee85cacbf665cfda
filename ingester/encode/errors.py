"""Errors of the encode layer; each ``str()`` is one line fit for a dead-letter header."""

from __future__ import annotations

__all__ = ["DecodeFailed", "EncodeFailed", "RegistryError", "SchemaLoadError"]


class EncodeFailed(Exception):
    """Avro rejected a record (a value out of range, a wrong type); the frame is dead-lettered."""


class DecodeFailed(Exception):
    """A value is not a record this project can decode (unknown fingerprint, bad header, body)."""


class RegistryError(Exception):
    """The schema registry refused a request or could not be reached."""


class SchemaLoadError(Exception):
    """A schemas directory or ``.avsc`` file is missing or invalid; names the file."""
