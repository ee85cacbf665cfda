"""docs/observability.md and docs/runbook.md agree with the metrics and the alert rules."""

from __future__ import annotations

import re
from types import SimpleNamespace
from typing import Any

from ingester.observe.metrics import METRIC_NAMES


def _table_names(text: str) -> set[str]:
    """Names in the first backticked cell of each Markdown table row."""
    return set(re.findall(r"^\|\s*`([a-zA-Z_:][a-zA-Z0-9_:]*)`\s*\|", text, re.MULTILINE))


def test_metric_table_lists_every_exported_metric(exported: Any, obs: SimpleNamespace) -> None:
    text = obs.OBSERVABILITY_DOC_PATH.read_text(encoding="utf-8")
    documented = {n for n in _table_names(text) if n.startswith("sportrix_ingester_")}
    assert set(METRIC_NAMES) - documented == set(), (
        f"docs/observability.md lacks a metric row for {sorted(set(METRIC_NAMES) - documented)}"
    )
    assert documented - set(METRIC_NAMES) == set(), (
        f"docs/observability.md documents metrics the daemon does not export: "
        f"{sorted(documented - set(METRIC_NAMES))}"
    )
    for line in text.splitlines():
        m = re.match(r"^\|\s*`(sportrix_ingester_\w+)`\s*\|\s*(\w+)\s*\|", line)
        if m:
            assert m.group(2) == exported.types[m.group(1)], f"wrong type in: {line}"


def test_alert_table_lists_every_alert(
    alert_rules: list[dict[str, Any]], obs: SimpleNamespace
) -> None:
    text = obs.OBSERVABILITY_DOC_PATH.read_text(encoding="utf-8")
    documented = {n for n in _table_names(text) if n.startswith("SportrixIngester")}
    names = {r["alert"] for r in alert_rules}
    assert documented == names, f"alert table differs: {sorted(documented ^ names)}"


def test_runbook_has_a_section_per_alert(
    alert_rules: list[dict[str, Any]], obs: SimpleNamespace
) -> None:
    text = obs.RUNBOOK_PATH.read_text(encoding="utf-8")
    headings = set(re.findall(r"^### (\S+)\s*$", text, re.MULTILINE))
    names = {r["alert"] for r in alert_rules}
    assert names <= headings, f"runbook lacks sections for {sorted(names - headings)}"
    for name in names:
        section = text.split(f"### {name}\n", 1)[1].split("\n### ", 1)[0]
        for part in ("**Means.**", "**Confirm.**", "**Do.**"):
            assert part in section, f"runbook section {name} lacks {part}"


def test_doc_links_resolve(obs: SimpleNamespace) -> None:
    """Links between the two docs point at headings that exist."""
    docs = {"runbook.md": obs.RUNBOOK_PATH, "observability.md": obs.OBSERVABILITY_DOC_PATH}
    anchors = {
        name: obs.markdown_anchors(p.read_text(encoding="utf-8")) for name, p in docs.items()
    }
    for name, path in docs.items():
        for target, anchor in re.findall(r"\]\(([\w.]*)#([\w-]+)\)", path.read_text("utf-8")):
            assert anchor in anchors[target or name], f"{name}: dead link {target}#{anchor}"
