"""Sport discovery and the schema conventions every sport must follow."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

import pytest
from typing_extensions import is_typeddict

from ingester.convert import ConverterSetupError, load_converters, registry
from ingester.convert import sports as sports_package
from ingester.encode import schemas as schemas_module
from ingester.encode.schemas import find_schemas_dir, load_schemas

REPO_SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
COMMON_HEADER = ["match_id", "sport", "op", "seq", "updated_at", "received_at"]
COMMON_FIELDS = ["competition", "home", "away", "status", "start_time"]

TENNIS_MODULE = '''
"""Tennis: the data shape behind schemas/tennis.avsc."""
from typing_extensions import TypedDict
from ingester.convert.common import CommonData

class Sets(TypedDict):
    home: int
    away: int

class Data(CommonData):
    sets: Sets
'''


def _tennis_schema() -> dict[str, Any]:
    """A tennis schema: soccer's common fields plus one sport field."""
    soccer = json.loads((REPO_SCHEMAS / "soccer.avsc").read_text())
    common = soccer["fields"][: len(COMMON_HEADER) + len(COMMON_FIELDS)]
    sets = {
        "name": "sets",
        "doc": "Sets won per player.",
        "type": {
            "type": "record",
            "name": "TennisSets",
            "fields": [
                {"name": "home", "type": "int", "doc": "Home."},
                {"name": "away", "type": "int", "doc": "Away."},
            ],
        },
    }
    return {
        "type": "record",
        "name": "TennisMatchState",
        "namespace": "com.sportrix.livescores",
        "doc": "Tennis.",
        "fields": [*common, sets],
    }


@pytest.fixture
def sports_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An extra directory searched for sport modules, as if it were ``sports/``."""
    extra = tmp_path / "sports"
    extra.mkdir()
    monkeypatch.setattr(sports_package, "__path__", [*sports_package.__path__, str(extra)])
    yield extra
    for name in [m for m in sys.modules if m.startswith(f"{sports_package.__name__}.tennis")]:
        del sys.modules[name]


@pytest.fixture
def schemas_copy(tmp_path: Path) -> Path:
    target = tmp_path / "schemas"
    shutil.copytree(REPO_SCHEMAS, target)
    return target


def test_adding_a_sport_is_one_module_and_one_schema(sports_dir: Path, schemas_copy: Path) -> None:
    (sports_dir / "tennis.py").write_text(TENNIS_MODULE)
    (schemas_copy / "tennis.avsc").write_text(json.dumps(_tennis_schema()))
    converters = load_converters(schemas_copy)
    assert {"cricket", "soccer", "tennis"} <= set(converters.sports)
    tennis = converters.get("tennis")
    assert tennis is not None
    assert tennis.schema_name == "com.sportrix.livescores.TennisMatchState"
    data = {
        "match_id": 7, "sport": "tennis", "competition": "ATP", "home": "A", "away": "B",
        "status": "live", "start_time": "2026-11-28T12:00:00Z", "sets": {"home": 1, "away": 0},
    }  # fmt: skip
    record = tennis.convert("update", data, 5)
    assert record["sets"] == {"home": 1, "away": 0}


def test_module_without_schema_is_a_start_up_error(sports_dir: Path, schemas_copy: Path) -> None:
    (sports_dir / "tennis.py").write_text(TENNIS_MODULE)
    with pytest.raises(ConverterSetupError, match=r"'tennis': module found but no .*tennis\.avsc"):
        load_converters(schemas_copy)


def test_schema_without_module_is_a_start_up_error(schemas_copy: Path) -> None:
    (schemas_copy / "tennis.avsc").write_text(json.dumps(_tennis_schema()))
    with pytest.raises(ConverterSetupError, match=r"'tennis': .*tennis\.avsc found but no module"):
        load_converters(schemas_copy)


def _install_plugin(where: Path, monkeypatch: pytest.MonkeyPatch, entry: str) -> None:
    """A distribution's metadata in ``where`` with the entry point ``entry`` of the sport
    group, ``where`` on ``sys.path`` (what installing a plugin amounts to)."""
    dist = where / "sportrix_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: sportrix-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[{registry.ENTRY_POINT_GROUP}]\n{entry}\n")
    monkeypatch.syspath_prepend(str(where))


def test_a_plugin_sport_is_its_module_and_the_schema_beside_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "sportrix_tennis.py").write_text(TENNIS_MODULE)
    (tmp_path / "tennis.avsc").write_text(json.dumps(_tennis_schema()))
    _install_plugin(tmp_path, monkeypatch, "tennis = sportrix_tennis")
    assert registry.plugin_schema_files() == {"tennis": tmp_path / "tennis.avsc"}
    assert "sportrix_tennis" not in sys.modules  # found, not imported, for a consumer
    converters = load_converters()
    del sys.modules["sportrix_tennis"]  # the next test imports its own
    entry = converters.sport("tennis")
    assert entry is not None
    assert entry.converter.schema_name == "com.sportrix.livescores.TennisMatchState"
    assert (entry.sample, entry.headline) == (None, None)
    assert {"cricket", "soccer", "tennis"} <= set(converters.sports)


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ("soccer = json", "sport 'soccer': plugin json clashes with a sport of the same name"),
        ("tennis = no_such_module", "sport 'tennis': plugin module no_such_module does not import"),
    ],
)
def test_a_bad_plugin_stops_start_up_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, entry: str, problem: str
) -> None:
    _install_plugin(tmp_path, monkeypatch, entry)
    with pytest.raises(ConverterSetupError, match=problem):
        load_converters()


def test_module_without_data_type_is_refused(sports_dir: Path) -> None:
    (sports_dir / "tennis.py").write_text("Data = dict\n")
    with pytest.raises(ConverterSetupError, match="must define Data"):
        registry.discover_sport_modules()


def test_schemas_dir_prefers_package_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    installed, checkout = tmp_path / "_schemas", tmp_path / "schemas"
    checkout.mkdir()
    monkeypatch.setattr(schemas_module, "_CANDIDATE_DIRS", (installed, checkout))
    assert find_schemas_dir() == checkout
    installed.mkdir()
    assert find_schemas_dir() == installed
    assert find_schemas_dir(REPO_SCHEMAS) == REPO_SCHEMAS


def _fields_without_doc(schema: Any, where: str) -> list[str]:
    if isinstance(schema, list):
        return [m for branch in schema for m in _fields_without_doc(branch, where)]
    if not isinstance(schema, dict):
        return []
    missing = [] if schema.get("type") not in ("record", "enum") or schema.get("doc") else [where]
    if schema.get("type") == "array":
        missing += _fields_without_doc(schema["items"], where)
    for field in schema.get("fields", []):
        path = f"{where}.{field['name']}"
        missing += ([] if field.get("doc") else [path]) + _fields_without_doc(field["type"], path)
    return missing


@pytest.mark.parametrize("path", sorted(REPO_SCHEMAS.glob("*.avsc")), ids=lambda p: p.stem)
def test_schema_conventions(path: Path) -> None:
    schema = json.loads(path.read_text())
    names = [field["name"] for field in schema["fields"]]
    assert names[: len(COMMON_HEADER)] == COMMON_HEADER
    assert set(COMMON_FIELDS) <= set(names)
    assert _fields_without_doc(schema, path.stem) == []
    soccer = json.loads((REPO_SCHEMAS / "soccer.avsc").read_text())
    shared = len(COMMON_HEADER) + len(COMMON_FIELDS)
    drop_doc = [{k: v for k, v in f.items() if k != "doc"} for f in soccer["fields"][:shared]]
    mine = [{k: v for k, v in f.items() if k != "doc"} for f in schema["fields"][:shared]]
    assert mine == drop_doc, "the common fields must be identical in every schema"


def _avro_fields(schema: Any, named: dict[str, Any]) -> dict[str, Any]:
    if isinstance(schema, str):
        schema = named[schema]
    named[schema["name"]] = schema
    return {field["name"]: field for field in schema["fields"]}


def _record_of(avro_type: Any, named: dict[str, Any]) -> Any:
    """The record (or None) inside an Avro type: itself, an array's items, a union branch."""
    if isinstance(avro_type, list):
        records = [_record_of(branch, named) for branch in avro_type]
        return next((r for r in records if r is not None), None)
    if isinstance(avro_type, str):
        avro_type = named.get(avro_type, avro_type)
    if isinstance(avro_type, dict) and avro_type["type"] == "array":
        return _record_of(avro_type["items"], named)
    if isinstance(avro_type, dict) and avro_type["type"] == "record":
        return avro_type
    return None


def _typed_dict_of(hint: Any) -> Any:
    """The TypedDict (or None) inside a type hint: itself, a list's items, an optional."""
    if is_typeddict(hint):
        return hint
    for arg in get_args(hint):
        found = _typed_dict_of(arg)
        if found is not None and get_origin(hint) is not dict:
            return found
    return None


def _mismatches(typed_dict: Any, record: Any, named: dict[str, Any], where: str) -> list[str]:
    hints = get_type_hints(typed_dict)
    fields = _avro_fields(record, named)
    problems = [f"{where}.{key}: not in the schema" for key in hints if key not in fields]
    for name, field in fields.items():
        nullable = isinstance(field["type"], list) and "null" in field["type"]
        if name not in hints:
            if name not in ("op", "received_at") and not nullable and "default" not in field:
                problems.append(f"{where}.{name}: required by the schema, not validated")
            continue
        inner_record = _record_of(field["type"], named)
        inner_dict = _typed_dict_of(hints[name])
        if (inner_record is None) != (inner_dict is None):
            problems.append(f"{where}.{name}: record in one, not the other")
        elif inner_record is not None:
            problems += _mismatches(inner_dict, inner_record, named, f"{where}.{name}")
    return problems


@pytest.mark.parametrize("sport", load_converters().sports)
def test_data_shape_matches_schema(sport: str) -> None:
    """Every sport's ``Data`` and its schema name the same fields, level by level."""
    data_type = registry.discover_sport_modules()[sport].Data
    schema = load_schemas()[sport].definition
    assert _mismatches(data_type, schema, {}, sport) == []


def test_a_plugin_sport_may_bring_its_own_simulator_engine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``ENGINE`` names the engine module; the simulator plays the sport from its first id."""
    from sportrix_devkit.simulator.config import SimulatorConfig
    from sportrix_devkit.simulator.engines import engine_kinds

    (tmp_path / "sportrix_tennis.py").write_text(TENNIS_MODULE + 'ENGINE = "tennis_engine"\n')
    (tmp_path / "tennis_engine.py").write_text(
        "FIRST_ID = 77_000\nDEFAULT_MATCHES = 2\n\ndef make(seed, match_id, now):\n    ...\n"
    )
    (tmp_path / "tennis.avsc").write_text(json.dumps(_tennis_schema()))
    _install_plugin(tmp_path, monkeypatch, "tennis = sportrix_tennis")
    engine_kinds.cache_clear()
    try:
        kinds = engine_kinds()
        assert list(kinds) == ["soccer", "tennis", "cricket"]  # by first id
        assert kinds["tennis"].make is sys.modules["tennis_engine"].make
        counts = SimulatorConfig().match_counts()
        assert counts == {"soccer": 20, "tennis": 2, "cricket": 10}
        with pytest.raises(ValueError, match="at most 36000 soccer matches"):
            SimulatorConfig(matches={"soccer": 36_001})
    finally:
        engine_kinds.cache_clear()
        for name in ("sportrix_tennis", "tennis_engine"):
            sys.modules.pop(name, None)
