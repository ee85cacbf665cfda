"""The schema evolution gate: ``schemas/*.avsc`` against every release in ``schemas/released/``.

Avro Java's ``SchemaCompatibility`` (``examples/java``, ``CheckCompatibility``) checks each
released schema both ways against the current schema of the same full name: backward (the
current schema reads what the released one wrote) and forward (the released schema reads what
the current one writes). Rules: ``docs/schemas.md``.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from tests.examples.builds import SCHEMAS, JavaBuild

RELEASED = SCHEMAS / "released"


def check(java: JavaBuild, current: Path, released: Path = RELEASED) -> tuple[int, str]:
    """Exit code and output of the gate."""
    done = subprocess.run(
        java.command("CheckCompatibility", str(current), str(released)),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done.returncode, done.stdout + done.stderr


def test_current_schemas_are_compatible_with_every_release(java_build: JavaBuild) -> None:
    code, output = check(java_build, SCHEMAS)
    assert code == 0, output
    for released in sorted(RELEASED.glob("*.avsc")):
        current = released.name.split(".")[0] + ".avsc"
        for direction in ("backward", "forward"):
            assert f"ok   {direction}: {current} vs released {released.name}" in output, output
    assert output.strip().endswith("compatible")


def test_every_release_is_named_after_its_current_schema() -> None:
    """``released/<sport>.v<N>.avsc`` holds a release of the record ``<sport>.avsc`` defines."""
    current = {p.stem: json.loads(p.read_text())["name"] for p in SCHEMAS.glob("*.avsc")}
    released = sorted(RELEASED.glob("*.avsc"))
    assert {p.name.split(".")[0] for p in released} == set(current)
    for path in released:
        sport, version, _ = path.name.split(".")
        assert re.fullmatch(r"v[1-9][0-9]*", version), path.name
        assert json.loads(path.read_text())["name"] == current[sport], path.name


def test_a_removed_field_and_a_narrowed_type_fail_the_gate(
    java_build: JavaBuild, tmp_path: Path
) -> None:
    """Fails on purpose: soccer loses ``competition`` (no default), ``match_id`` long -> int."""
    schema: dict[str, Any] = json.loads((SCHEMAS / "soccer.avsc").read_text())
    schema["fields"] = [f for f in schema["fields"] if f["name"] != "competition"]
    schema["fields"][0]["type"] = "int"
    (tmp_path / "soccer.avsc").write_text(json.dumps(schema))
    shutil.copy(SCHEMAS / "cricket.avsc", tmp_path)

    code, output = check(java_build, tmp_path)

    assert code == 1, output
    assert "ok   backward: cricket.avsc vs released cricket.v1.avsc" in output
    # The current schema cannot read a released record's long match_id as an int.
    assert "FAIL backward: soccer.avsc vs released soccer.v1.avsc" in output
    assert (
        "TYPE_MISMATCH at /fields/0/type: reader type: INT not compatible with writer type: LONG"
        in output
    )
    # A released reader finds no competition in new records, and has no default for it.
    assert "FAIL forward: soccer.avsc vs released soccer.v1.avsc" in output
    assert "READER_FIELD_MISSING_DEFAULT_VALUE at /fields/6: competition" in output
    assert output.strip().endswith("2 incompatible pair(s)")


def test_a_released_record_without_a_current_schema_fails_the_gate(
    java_build: JavaBuild, tmp_path: Path
) -> None:
    shutil.copy(SCHEMAS / "soccer.avsc", tmp_path)

    code, output = check(java_build, tmp_path)

    assert code == 1, output
    assert "com.sportrix.livescores.CricketMatchState was released but no current .avsc" in output
