"""The sport registry: every sport module paired with its schema, one :class:`Sport` each.

A sport is ``<sport>.avsc`` + one module defining ``Data`` (see :mod:`ingester.convert.sports`).
Built-in modules live in :mod:`ingester.convert.sports` and their schemas in the schemas
directory; a plugin sport is a module named by an entry point of the group
``sportrix_ingester.sports`` (the entry point's name is the sport), its schema
``<sport>.avsc`` in the schemas directory or beside the module. Everything the package does
per sport (decode, validation, conversion, encoding, sample frames, the ``tail`` headline,
the simulator's engine) starts from the registry's entry for that sport.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType
from typing import Any

from typing_extensions import is_typeddict

from ingester.convert import sports
from ingester.convert.common import CommonData, SportConverter
from ingester.encode.schemas import AvroSchema, find_schemas_dir, load_schema, load_schemas

__all__ = [
    "ENTRY_POINT_GROUP",
    "ConverterSetupError",
    "Converters",
    "Sport",
    "discover_sport_modules",
    "load_converters",
    "plugin_schema_files",
]

#: The entry-point group that names plugin sport modules (``<sport> = <module>``).
ENTRY_POINT_GROUP = "sportrix_ingester.sports"


class ConverterSetupError(ValueError):
    """A sport module and the schemas do not pair up; one line naming the sport and the fix."""


@dataclass(frozen=True, slots=True)
class Sport:
    """One registered sport: its module's declarations and its converter."""

    #: The ``data.sport`` value (the module's name, or the entry point's).
    name: str
    #: The module that declares it (``Data``, and optionally ``SAMPLE``, ``HISTORY``,
    #: ``headline``, ``ENGINE``: see :mod:`ingester.convert.sports`).
    module: ModuleType
    #: Validation and conversion, and the shape the fast path needs.
    converter: SportConverter

    @property
    def sample(self) -> Mapping[str, Any] | None:
        """Protocol-shaped example ``data`` of the sport (``SAMPLE``), if the module has one."""
        sample: Mapping[str, Any] | None = getattr(self.module, "SAMPLE", None)
        return sample

    @property
    def history(self) -> str | None:
        """The ``data`` list that only grows over a match (``HISTORY``), if any."""
        history: str | None = getattr(self.module, "HISTORY", None)
        return history

    @property
    def headline(self) -> Callable[[dict[str, Any]], str] | None:
        """The module's one-line summary of a decoded record (``headline``), if any."""
        headline: Callable[[dict[str, Any]], str] | None = getattr(self.module, "headline", None)
        return headline


class Converters:
    """The registry: every sport that has both a module and a schema, by name."""

    __slots__ = ("_by_sport", "schemas_dir")

    def __init__(self, entries: Mapping[str, Sport], schemas_dir: Path) -> None:
        self._by_sport = dict(entries)
        #: The directory the schemas were loaded from (the same files serve decoding).
        self.schemas_dir = schemas_dir

    def get(self, sport: str) -> SportConverter | None:
        """The converter for ``sport``, or ``None`` when the project has no schema for it."""
        entry = self._by_sport.get(sport)
        return None if entry is None else entry.converter

    def sport(self, sport: str) -> Sport | None:
        """The registry entry of ``sport``, or ``None`` for a sport not registered."""
        return self._by_sport.get(sport)

    def entries(self) -> tuple[Sport, ...]:
        """Every registry entry, in the order of :attr:`sports`."""
        return tuple(self._by_sport[sport] for sport in self.sports)

    @property
    def sports(self) -> tuple[str, ...]:
        """The sports that can be converted, sorted."""
        return tuple(sorted(self._by_sport))

    @property
    def schemas(self) -> tuple[AvroSchema, ...]:
        """Every sport's schema, in the order of :attr:`sports` (for building encoders)."""
        return tuple(self._by_sport[sport].converter.schema for sport in self.sports)

    def __iter__(self) -> Iterator[SportConverter]:
        return (self._by_sport[sport].converter for sport in self.sports)

    def __len__(self) -> int:
        return len(self._by_sport)


def _data_type(module: ModuleType) -> type[CommonData]:
    data_type: Any = getattr(module, "Data", None)
    if not (is_typeddict(data_type) and "match_id" in data_type.__annotations__):
        raise ConverterSetupError(
            f"sport module {module.__name__} must define Data, a TypedDict extending CommonData"
        )
    found: type[CommonData] = data_type
    return found


def discover_sport_modules() -> dict[str, ModuleType]:
    """Every sport module by sport: :mod:`ingester.convert.sports`' modules, then plugins
    (entry points of :data:`ENTRY_POINT_GROUP`). Each must define ``Data``."""
    found: dict[str, ModuleType] = {}
    for info in pkgutil.iter_modules(sports.__path__):
        if not info.name.startswith("_"):
            found[info.name] = importlib.import_module(f"{sports.__name__}.{info.name}")
    for point in entry_points(group=ENTRY_POINT_GROUP):
        if point.name in found:
            raise ConverterSetupError(
                f"sport {point.name!r}: plugin {point.value} clashes with a sport of the same name"
            )
        try:
            found[point.name] = importlib.import_module(point.value)
        except Exception as exc:  # a plugin's bug (ImportError, SyntaxError...) is one line
            raise ConverterSetupError(
                f"sport {point.name!r}: plugin module {point.value} does not import: {exc}"
            ) from None
    for module in found.values():
        _data_type(module)
    return found


def plugin_schema_files() -> dict[str, Path]:
    """The ``<sport>.avsc`` files found beside plugin sport modules, by sport (the modules
    are located, not imported: a consumer decoding records needs their schemas only)."""
    found: dict[str, Path] = {}
    for point in entry_points(group=ENTRY_POINT_GROUP):
        try:
            spec = importlib.util.find_spec(point.value)
        except ImportError:  # its package is missing: load_converters says so, not a consumer
            continue
        if spec is not None and spec.origin is not None:
            path = Path(spec.origin).parent / f"{point.name}.avsc"
            if path.is_file():
                found[point.name] = path
    return found


def load_converters(schemas_dir: Path | None = None) -> Converters:
    """Pair every sport module with its ``<sport>.avsc`` (see :func:`find_schemas_dir`).

    Raise :class:`ConverterSetupError` when a module has no schema or a schema no module, and
    :class:`ingester.encode.errors.SchemaLoadError` when a schema file is invalid.
    """
    directory = find_schemas_dir(schemas_dir)
    schemas = load_schemas(directory)
    modules = discover_sport_modules()
    for sport, path in plugin_schema_files().items():
        if sport not in schemas:
            schemas[sport] = load_schema(path)
    for sport in sorted(modules.keys() - schemas.keys()):
        raise ConverterSetupError(f"sport {sport!r}: module found but no {directory / sport}.avsc")
    for sport in sorted(schemas.keys() - modules.keys()):
        raise ConverterSetupError(
            f"sport {sport!r}: {directory / sport}.avsc found but no module "
            f"{sports.__name__}.{sport}"
        )
    return Converters(
        {
            sport: Sport(sport, module, SportConverter(sport, schemas[sport], _data_type(module)))
            for sport, module in modules.items()
        },
        directory,
    )
