"""Find every sport module and pair it with its schema: ``sports/<sport>.py`` + ``<sport>.avsc``."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from typing_extensions import is_typeddict

from ingester.convert import sports
from ingester.convert.common import CommonData, SportConverter
from ingester.encode.schemas import AvroSchema, find_schemas_dir, load_schemas

__all__ = ["ConverterSetupError", "Converters", "discover_sport_modules", "load_converters"]


class ConverterSetupError(Exception):
    """A sport module and the schemas do not pair up; one line naming the sport and the fix."""


class Converters:
    """The converter of every sport that has both a module and a schema."""

    __slots__ = ("_by_sport", "schemas_dir")

    def __init__(self, converters: Mapping[str, SportConverter], schemas_dir: Path) -> None:
        self._by_sport = dict(converters)
        #: The directory the schemas were loaded from (the same files serve decoding).
        self.schemas_dir = schemas_dir

    def get(self, sport: str) -> SportConverter | None:
        """The converter for ``sport``, or ``None`` when the project has no schema for it."""
        return self._by_sport.get(sport)

    @property
    def sports(self) -> tuple[str, ...]:
        """The sports that can be converted, sorted."""
        return tuple(sorted(self._by_sport))

    @property
    def schemas(self) -> tuple[AvroSchema, ...]:
        """Every sport's schema, in the order of :attr:`sports` (for building encoders)."""
        return tuple(self._by_sport[sport].schema for sport in self.sports)

    def __iter__(self) -> Iterator[SportConverter]:
        return (self._by_sport[sport] for sport in self.sports)

    def __len__(self) -> int:
        return len(self._by_sport)


def discover_sport_modules() -> dict[str, type[CommonData]]:
    """The ``Data`` type of each module of :mod:`ingester.convert.sports`, by module name."""
    found: dict[str, type[CommonData]] = {}
    for info in pkgutil.iter_modules(sports.__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{sports.__name__}.{info.name}")
        data_type: Any = getattr(module, "Data", None)
        if not (is_typeddict(data_type) and "match_id" in data_type.__annotations__):
            raise ConverterSetupError(
                f"sport module {module.__name__} must define Data, a TypedDict extending CommonData"
            )
        found[info.name] = data_type
    return found


def load_converters(schemas_dir: Path | None = None) -> Converters:
    """Pair every sport module with ``<schemas dir>/<sport>.avsc``; see :func:`find_schemas_dir`.

    Raise :class:`ConverterSetupError` when a module has no schema or a schema no module, and
    :class:`ingester.encode.errors.SchemaLoadError` when a schema file is invalid.
    """
    directory = find_schemas_dir(schemas_dir)
    schemas = load_schemas(directory)
    modules = discover_sport_modules()
    for sport in sorted(modules.keys() - schemas.keys()):
        raise ConverterSetupError(f"sport {sport!r}: module found but no {directory / sport}.avsc")
    for sport in sorted(schemas.keys() - modules.keys()):
        raise ConverterSetupError(
            f"sport {sport!r}: {directory / sport}.avsc found but no module "
            f"{sports.__name__}.{sport}"
        )
    return Converters(
        {sport: SportConverter(sport, schemas[sport], data) for sport, data in modules.items()},
        directory,
    )
