"""The daemon's import closure is the daemon: the development tooling (``devkit/``) stays outside.

The arrow runs one way: ``sportrix_devkit`` uses the daemon's pieces, ``ingester`` never names
``sportrix_devkit``; the devkit's sub-commands reach the one ``sportrix-ingester`` command
through an entry-point group.
"""

from __future__ import annotations

import ast
import graphlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

import sportrix_devkit
from ingester import cli

REPO = Path(__file__).resolve().parents[1]
TOOLING = ("sportrix_devkit", "simulator", "bench", "localkafka", "demo")

# In a fresh interpreter: import the daemon, parse `run --help` with the real CLI, then
# report every module loaded (stdout carries the help text first; the list is the last line).
LOADED = """
import contextlib, io, json, sys
import ingester.app
from ingester.cli import main
with contextlib.redirect_stdout(io.StringIO()) as help_text, contextlib.suppress(SystemExit):
    main(["run", "--help"])
assert "--topic" in help_text.getvalue(), help_text.getvalue()
print(json.dumps(sorted(sys.modules)))
"""


def tooling_modules(names: list[str]) -> list[str]:
    return [name for name in names if any(part in TOOLING for part in name.split("."))]


def test_starting_the_daemon_loads_no_tooling() -> None:
    done = subprocess.run(
        [sys.executable, "-c", LOADED], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout.splitlines()[-1])
    assert "ingester.app" in loaded
    assert "ingester.pipeline" in loaded
    assert tooling_modules(loaded) == []


def test_the_tooling_check_sees_tooling() -> None:
    assert tooling_modules(["sportrix_devkit", "sportrix_devkit.simulator.server"]) == [
        "sportrix_devkit",
        "sportrix_devkit.simulator.server",
    ]
    assert tooling_modules(["ingester.tools.tail", "ingester.convert.samples"]) == []


def test_no_daemon_source_names_the_devkit() -> None:
    sources = sorted((REPO / "ingester").rglob("*.py"))
    assert len(sources) > 30
    arrows = [
        f"{path.relative_to(REPO)}:{number}: {line.strip()}"
        for path in sources
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if "sportrix_devkit" in line
    ]
    assert arrows == []


def test_the_devkit_adds_its_commands_through_the_entry_point_group() -> None:
    commands = cli.available_commands()
    assert list(commands)[:3] == ["run", "matches", "tail"]
    for name in cli.DEVKIT_COMMANDS:
        assert commands[name].startswith("sportrix_devkit"), name


def test_without_the_devkit_its_commands_say_how_to_get_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli, "entry_points", lambda group: [])
    for name in cli.DEVKIT_COMMANDS:
        assert cli.main([name, "--port", "0"]) == 2
        assert capsys.readouterr().err == (
            f"sportrix-ingester: {name} comes with the devkit: "
            "pip install 'sportrix-ingester[devkit]'\n"
        )
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    listed = capsys.readouterr().out
    assert "run" in listed
    assert "simulate" not in listed


def import_graph(package: Path, name: str) -> dict[str, set[str]]:
    """Each module of ``package`` (imported as ``name``) and the package's modules it imports,
    at module level or inside a function or ``TYPE_CHECKING`` block alike."""
    modules: dict[str, Path] = {}
    for path in package.rglob("*.py"):
        parts = [name, *path.relative_to(package).with_suffix("").parts]
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        imported: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                # ``from pkg import submodule`` imports the submodule; ``from pkg import name``
                # the package (a parent package's __init__ runs for any import below it).
                names = [f"{node.module}.{alias.name}" for alias in node.names]
                imported.update(names)
                if not all(full in modules for full in names):
                    imported.add(node.module)
        graph[module] = {other for other in imported if other in modules and other != module}
    return graph


def test_the_devkit_has_no_import_cycle() -> None:
    graph = import_graph(Path(sportrix_devkit.__file__).parent, "sportrix_devkit")
    assert "sportrix_devkit.simulator.server" in graph["sportrix_devkit.simulator"]
    assert "sportrix_devkit.simulator.control" in graph["sportrix_devkit.simulator.server"]
    graphlib.TopologicalSorter(graph).prepare()  # raises CycleError on a cycle


def test_the_cycle_check_sees_a_cycle(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("from toy import b\n")
    (tmp_path / "b.py").write_text("def f():\n    from toy.a import g\n")
    with pytest.raises(graphlib.CycleError):
        graphlib.TopologicalSorter(import_graph(tmp_path, "toy")).prepare()


#: The daemon's layers, bottom first (docs/architecture.md, "Layers"): a module may import
#: its own layer and the layers below it, never one above.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("ingester", "ingester.core", "ingester.settings", "ingester.observe.metrics",
     "ingester.observe.histogram", "ingester.observe.logs"),
    ("ingester.upstream", "ingester.convert", "ingester.encode"),
    ("ingester.pipeline", "ingester.codecs", "ingester.consume"),
    ("ingester.produce",),
    ("ingester.control", "ingester.supervisor"),
    ("ingester.observe.health", "ingester.observe.http", "ingester.tools"),
    ("ingester.app", "ingester.cli", "ingester.__main__"),
)  # fmt: skip


def layer_of(module: str) -> int:
    """The layer of ``module``: that of the longest prefix listed in :data:`LAYERS`."""
    found = [
        (len(prefix), index)
        for index, prefixes in enumerate(LAYERS)
        for prefix in prefixes
        if module == prefix or module.startswith(f"{prefix}.")
    ]
    assert found, f"{module} is in no layer: add it to LAYERS and docs/architecture.md"
    return max(found)[1]


def test_the_daemons_imports_point_down_and_never_close_a_cycle() -> None:
    graph = import_graph(REPO / "ingester", "ingester")
    assert "ingester.upstream.session" in graph["ingester.produce.feed"]
    upward = sorted(
        f"{module} (layer {layer_of(module)}) -> {other} (layer {layer_of(other)})"
        for module, imported in graph.items()
        for other in imported
        if layer_of(other) > layer_of(module)
    )
    assert upward == []
    graphlib.TopologicalSorter(graph).prepare()  # raises CycleError on a cycle


def test_the_layer_check_sees_an_upward_arrow() -> None:
    assert layer_of("ingester.upstream.session") < layer_of("ingester.pipeline")
    assert layer_of("ingester.observe.metrics") < layer_of("ingester.observe.http")
