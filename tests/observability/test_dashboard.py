"""The Grafana dashboard: structure, variables, PromQL that parses and names exported metrics."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import yaml

from ingester.observe.metrics import METRIC_NAMES

DS_REF = {"type": "prometheus", "uid": "${datasource}"}


def test_dashboard_identity(dashboard: dict[str, Any]) -> None:
    assert dashboard["uid"] == "sportrix-ingester"
    assert dashboard["title"]
    assert int(dashboard["schemaVersion"]) >= 38
    assert dashboard.get("id") is None, "an exported id breaks importing into another Grafana"
    assert "__inputs" not in dashboard, "the datasource variable replaces import-time inputs"


def test_template_variables(dashboard: dict[str, Any]) -> None:
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    ds = variables.get("datasource")
    assert ds is not None
    assert ds["type"] == "datasource"
    assert ds["query"] == "prometheus"
    for name in ("job", "instance"):
        var = variables.get(name)
        assert var is not None, f"no {name!r} variable"
        assert var["type"] == "query"
        assert var["datasource"] == DS_REF, f"variable {name} must query ${{datasource}}"
        assert var.get("includeAll")
        assert var.get("allValue") == ".*"
        query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
        assert query.startswith("label_values(")
        assert query.endswith(f", {name})")
    assert "$job" in str(variables["instance"]["query"]), "instance should follow the job choice"


def test_panel_ids_unique_and_layout_sane(dashboard: dict[str, Any], obs: SimpleNamespace) -> None:
    panels = obs.iter_panels(dashboard)
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), (
        f"duplicate panel ids: {sorted(i for i in ids if ids.count(i) > 1)}"
    )
    cells: dict[tuple[int, int], str] = {}
    for p in panels:
        g = p["gridPos"]
        assert g["x"] >= 0, f"panel {p['title']!r} starts left of the grid"
        assert g["x"] + g["w"] <= 24, f"panel {p['title']!r} is wider than the grid"
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"panels {cells[(x, y)]!r} and {p['title']!r} overlap"
                cells[(x, y)] = p["title"]


def test_every_panel_uses_the_datasource_variable(
    dashboard: dict[str, Any], obs: SimpleNamespace
) -> None:
    for p in obs.iter_panels(dashboard):
        if p["type"] == "row":
            continue
        assert p.get("datasource") == DS_REF, (
            f"panel {p['title']!r}: datasource {p.get('datasource')}"
        )
        assert p.get("targets"), f"panel {p['title']!r} has no query"
        for t in p["targets"]:
            assert t.get("datasource") == DS_REF, f"panel {p['title']!r} target {t['refId']}"
            assert t.get("expr", "").strip(), f"panel {p['title']!r} target {t['refId']}: empty"


def test_every_selector_filters_by_job_and_instance(
    dashboard_queries: list[Any], obs: SimpleNamespace
) -> None:
    for q in dashboard_queries:
        for sel in obs.PromQL.read(q.expr).selectors:
            assert ("job", "=~", "$job") in sel.matchers, f"{q.title!r}: {sel.name} lacks $job"
            assert ("instance", "=~", "$instance") in sel.matchers, (
                f"{q.title!r}: {sel.name} lacks $instance"
            )


def test_dashboard_uses_only_exported_metrics(
    dashboard: dict[str, Any], dashboard_queries: list[Any], exported: Any, obs: SimpleNamespace
) -> None:
    allowed = exported.series_names()
    exprs = [(q.title, q.expr) for q in dashboard_queries]
    for var in dashboard["templating"]["list"]:
        if var["type"] == "query":
            query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
            inner = re.fullmatch(r"label_values\((.*),\s*\w+\)", query)
            assert inner, f"variable {var['name']}: {query!r}"
            exprs.append((f"variable {var['name']}", inner.group(1)))
    for where, expr in exprs:
        reading = obs.PromQL.read(expr)
        assert reading.selectors, f"{where}: no selector in {expr!r}"
        for sel in reading.selectors:
            assert sel.name in allowed, (
                f"{where}: {sel.name!r} is not exported (METRIC_NAMES: {sorted(METRIC_NAMES)})"
            )
            labels = exported.labels_of(sel.name)
            for label, _op, _value in sel.matchers:
                assert label in labels, f"{where}: {sel.name} has no label {label!r}"
        known = {lab for s in reading.selectors for lab in exported.labels_of(s.name)}
        assert reading.grouping_labels <= known, (
            f"{where}: groups by labels its metrics lack: {reading.grouping_labels - known}"
        )


def test_dashboard_covers_every_exported_metric(
    dashboard_queries: list[Any], exported: Any, obs: SimpleNamespace
) -> None:
    """A metric the daemon exports but no panel shows is a gap for the person on call."""
    shown = {
        exported.family_of(sel.name)
        for q in dashboard_queries
        for sel in obs.PromQL.read(q.expr).selectors
    }
    missing = set(METRIC_NAMES) - shown
    assert not missing, (
        f"no dashboard panel shows {sorted(missing)}: add a panel to "
        "helm/sportrix-ingester/files/dashboard.json and a row to docs/observability.md"
    )


def test_every_query_parses(
    dashboard_queries: list[Any], promtool: Path, obs: SimpleNamespace, tmp_path: Path
) -> None:
    """Each panel query, with Grafana's variables filled in, as a recording rule for promtool."""
    groups = [
        {
            "name": f"panel {q.panel_id} {q.title} {q.ref_id}",
            "rules": [
                {
                    "record": f"dashboard:panel_{q.panel_id}_{q.ref_id}",
                    "expr": obs.substitute(q.expr),
                }
            ],
        }
        for q in dashboard_queries
    ]
    path = tmp_path / "dashboard.rules.yml"
    path.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False), encoding="utf-8")
    result = subprocess.run(
        [str(promtool), "check", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, (
        f"a dashboard query does not parse:\n{result.stdout}{result.stderr}"
    )
    assert f"SUCCESS: {len(groups)} rules found" in result.stdout


def test_substitute_rejects_unknown_variables(obs: SimpleNamespace) -> None:
    assert obs.substitute('rate(x{job=~"$job"}[$__rate_interval])') == 'rate(x{job=~".*"}[5m])'
    try:
        obs.substitute('x{a="$other"}')
    except AssertionError:
        return
    raise AssertionError("an unknown Grafana variable went through")
