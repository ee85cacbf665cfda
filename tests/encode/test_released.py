"""``Decoder`` reads values of every release in ``schemas/released/`` in today's shape."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ingester.convert.samples import protocol_example
from ingester.encode import DecodeFailed, Decoder, SingleObjectEncoder, load_schemas
from ingester.encode.schemas import parse_avro_schema
from tests.encode.test_single_object import record_of

REPO_SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


@pytest.fixture
def schemas_with_a_new_field(tmp_path: Path) -> Path:
    """Today's soccer schema released as v1; the current one adds a nullable ``venue``."""
    shutil.copytree(REPO_SCHEMAS, tmp_path / "schemas")
    current = tmp_path / "schemas" / "soccer.avsc"
    definition = json.loads(current.read_text())
    definition["fields"].append(
        {"name": "venue", "type": ["null", "string"], "default": None, "doc": "Stadium."}
    )
    current.write_text(json.dumps(definition))
    return tmp_path / "schemas"


def test_the_repository_releases_decode() -> None:
    decoder = Decoder(REPO_SCHEMAS)
    for path in sorted((REPO_SCHEMAS / "released").glob("soccer.*.avsc")):
        release = parse_avro_schema(json.loads(path.read_text()))
        value = SingleObjectEncoder(release).encode(record_of("soccer"))
        assert decoder.decode(value).record["match_id"] == protocol_example("soccer")["match_id"]


def test_a_value_of_an_earlier_release_is_resolved_to_the_current_schema(
    schemas_with_a_new_field: Path,
) -> None:
    released = load_schemas(REPO_SCHEMAS)["soccer"]  # what soccer.v1.avsc holds
    value = SingleObjectEncoder(released).encode(record_of("soccer"))

    decoded = Decoder(schemas_with_a_new_field).decode(value)

    assert decoded.schema_name == "com.sportrix.livescores.SoccerMatchState"
    assert decoded.record["venue"] is None  # the current schema's default
    assert decoded.record["score"] == protocol_example("soccer")["score"]


def test_without_the_release_the_old_fingerprint_is_unknown(
    schemas_with_a_new_field: Path,
) -> None:
    shutil.rmtree(schemas_with_a_new_field / "released")
    value = SingleObjectEncoder(load_schemas(REPO_SCHEMAS)["soccer"]).encode(record_of("soccer"))

    with pytest.raises(DecodeFailed, match="unknown schema fingerprint bd40e149eea4c7c0"):
        Decoder(schemas_with_a_new_field).decode(value)
