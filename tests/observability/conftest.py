"""Fixtures for the observability tests: the dashboard, the alert rules and what they refer to.

* ``promtool`` / ``prometheus_bin``: paths of Debian's ``prometheus`` package binaries (from
  ``PATH`` or ``/usr/bin``). A missing binary FAILS the test with the install command; these
  tests never skip.
* ``dashboard``: ``helm/sportrix-ingester/files/dashboard.json``, parsed.
* ``dashboard_queries``: every panel target as a :class:`PanelQuery`.
* ``rules``: ``helm/sportrix-ingester/files/alerts.rules.yml``, parsed.
* ``exported``: what the daemon exports (:class:`Exported`), from ``ingester.observe.metrics``.
* ``promql``: :class:`PromQL`, a small PromQL reader that lists the selectors in an expression
  (metric name and label matchers) and the labels named in ``by``/``on``/... clauses. It is a
  lexer, not a full parser: whether an expression parses is promtool's job.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from ingester.observe.histogram import BatchHistogram
from ingester.observe.metrics import METRIC_NAMES, Metrics

ROOT = Path(__file__).resolve().parents[2]
CHART_FILES = ROOT / "helm" / "sportrix-ingester" / "files"
DASHBOARD_PATH = CHART_FILES / "dashboard.json"
RULES_PATH = CHART_FILES / "alerts.rules.yml"
RULES_TEST_PATH = Path(__file__).resolve().parent / "alerts_test.yml"
RUNBOOK_PATH = ROOT / "docs" / "runbook.md"
OBSERVABILITY_DOC_PATH = ROOT / "docs" / "observability.md"

#: The job matcher every alert expression uses (documented in docs/observability.md).
RULES_JOB_MATCHER = ("job", "=~", ".*sportrix-ingester.*")

#: Labels Prometheus adds to every scraped series (target labels), and the histogram bucket label.
TARGET_LABELS = frozenset({"job", "instance"})

INSTALL_HINT = (
    "install Debian's prometheus package: "
    "`apt-get update && apt-get install -y --no-install-recommends prometheus` "
    "(the project's `make test` set-up does it)"
)


def find_binary(name: str) -> Path:
    """``name`` from PATH or /usr/bin; fails the test (never skips) when it is missing."""
    found = shutil.which(name) or (
        f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None
    )
    if not found:
        pytest.fail(f"`{name}` not found on PATH nor in /usr/bin: {INSTALL_HINT}", pytrace=False)
    return Path(found)


@pytest.fixture(scope="session")
def promtool() -> Path:
    return find_binary("promtool")


@pytest.fixture(scope="session")
def prometheus_bin() -> Path:
    return find_binary("prometheus")


# ----------------------------------------------------------------------------- exported metrics


@dataclass(frozen=True)
class Exported:
    """The metric families of ``ingester.observe.metrics`` as Prometheus stores their series."""

    #: family name (counters with ``_total``) -> Prometheus type
    types: dict[str, str]
    #: family name -> label names declared in the code
    labels: dict[str, frozenset[str]]
    #: family name -> label -> values created up front (the closed sets, e.g. ``state``)
    primed: dict[str, dict[str, frozenset[str]]]

    def series_names(self) -> frozenset[str]:
        """Names a query may select: gauges and counters as is, histograms by their series."""
        names = {"up"}
        for name, kind in self.types.items():
            if kind == "histogram":
                names.update(name + suffix for suffix in ("_bucket", "_sum", "_count"))
            else:
                names.add(name)
        return frozenset(names)

    def family_of(self, series: str) -> str | None:
        """The family a series name belongs to (``..._bucket`` -> the histogram), or None."""
        if series in self.types:
            return series
        for suffix in ("_bucket", "_sum", "_count"):
            base = series.removesuffix(suffix)
            if base != series and self.types.get(base) == "histogram":
                return base
        return None

    def labels_of(self, series: str) -> frozenset[str]:
        """Label names a series of this name can carry (target labels included)."""
        if series == "up":
            return TARGET_LABELS
        family = self.family_of(series)
        assert family is not None, series
        extra = {"le"} if series.endswith("_bucket") else set()
        return self.labels[family] | TARGET_LABELS | extra


def _exported() -> Exported:
    metrics = Metrics()
    types: dict[str, str] = {}
    labels: dict[str, frozenset[str]] = {}
    for wrapper in vars(metrics).values():
        if isinstance(wrapper, BatchHistogram):
            types[wrapper.name] = "histogram"
            labels[wrapper.name] = frozenset(wrapper.labelnames)
            continue
        if not isinstance(wrapper, MetricWrapperBase):
            continue
        # prometheus_client keeps the family name without `_total` and the declared labels here.
        kind = wrapper._type
        name = wrapper._name + ("_total" if kind == "counter" else "")
        types[name] = kind
        labels[name] = frozenset(wrapper._labelnames)
    primed: dict[str, dict[str, set[str]]] = {}
    for family in metrics.registry.collect():
        name = family.name + ("_total" if family.type == "counter" else "")
        for sample in family.samples:
            for label, value in sample.labels.items():
                if label != "le":
                    primed.setdefault(name, {}).setdefault(label, set()).add(value)
    assert set(types) == set(METRIC_NAMES), (
        "reading metric families from Metrics() disagrees with METRIC_NAMES: "
        f"{sorted(set(types) ^ set(METRIC_NAMES))}"
    )
    return Exported(
        types=types,
        labels=labels,
        primed={n: {k: frozenset(v) for k, v in d.items()} for n, d in primed.items()},
    )


@pytest.fixture(scope="session")
def exported() -> Exported:
    return _exported()


# ----------------------------------------------------------------------------- PromQL reader


@dataclass(frozen=True)
class Selector:
    """One vector selector: ``name{label op "value", ...}``."""

    name: str
    matchers: tuple[tuple[str, str, str], ...]

    def matcher(self, label: str) -> tuple[str, str, str] | None:
        return next((m for m in self.matchers if m[0] == label), None)


@dataclass
class Reading:
    selectors: list[Selector] = field(default_factory=list)
    #: label names listed in by/without/on/ignoring/group_left/group_right clauses
    grouping_labels: set[str] = field(default_factory=set)


_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<comment>\#[^\n]*)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<range>\[[^\]]*\])
  | (?P<duration>(?:\d+(?:ms|[smhdwy]))+\b)
  | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|0x[0-9a-fA-F]+)
  | (?P<ident>[a-zA-Z_:][a-zA-Z0-9_:]*)
  | (?P<matchop>=~|!~|!=|==|<=|>=|=)
  | (?P<punct>[{}(),])
  | (?P<op>[-+*/%^<>@])
    """,
    re.VERBOSE,
)

_KEYWORDS = frozenset({"and", "or", "unless", "offset", "bool", "inf", "nan", "atan2"})
_GROUPING = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})


class PromQL:
    """Lists the selectors and grouping labels of a PromQL expression (see module docstring)."""

    @staticmethod
    def tokens(expr: str) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        pos = 0
        while pos < len(expr):
            m = _TOKEN.match(expr, pos)
            if m is None:
                raise ValueError(f"cannot read PromQL at {expr[pos : pos + 30]!r} in {expr!r}")
            kind = m.lastgroup
            assert kind is not None
            if kind not in ("ws", "comment"):
                out.append((kind, m.group()))
            pos = m.end()
        return out

    @classmethod
    def read(cls, expr: str) -> Reading:
        toks = cls.tokens(expr)
        reading = Reading()
        i = 0
        while i < len(toks):
            kind, text = toks[i]
            nxt = toks[i + 1] if i + 1 < len(toks) else ("", "")
            if kind == "ident" and text in _GROUPING:
                i += 1
                if i < len(toks) and toks[i] == ("punct", "("):
                    i += 1
                    while i < len(toks) and toks[i] != ("punct", ")"):
                        if toks[i][0] == "ident":
                            reading.grouping_labels.add(toks[i][1])
                        i += 1
                i += 1
                continue
            if kind == "ident" and (nxt == ("punct", "(") or nxt[1] in _GROUPING):
                # a function or an aggregation (`sum by (...) (...)`)
                i += 1
                continue
            if kind == "ident" and text.lower() in _KEYWORDS:
                i += 1
                continue
            if kind == "ident" or (kind == "punct" and text == "{"):
                name = text if kind == "ident" else ""
                if kind == "ident":
                    i += 1
                matchers: list[tuple[str, str, str]] = []
                if i < len(toks) and toks[i] == ("punct", "{"):
                    i += 1
                    while i < len(toks) and toks[i] != ("punct", "}"):
                        if toks[i][0] == "ident":
                            label, op, value = toks[i][1], toks[i + 1][1], toks[i + 2][1]
                            matchers.append((label, op, _unquote(value)))
                            i += 3
                        else:
                            i += 1  # commas
                    i += 1
                for label, _op, value in matchers:
                    if label == "__name__":
                        name = value
                reading.selectors.append(Selector(name, tuple(matchers)))
                continue
            i += 1
        return reading


def _unquote(token: str) -> str:
    if token.startswith('"'):
        try:
            return str(json.loads(token))
        except json.JSONDecodeError:
            pass
    return token[1:-1]


# ----------------------------------------------------------------------------- dashboard


@dataclass(frozen=True)
class PanelQuery:
    panel_id: int
    title: str
    ref_id: str
    expr: str
    instant: bool


def iter_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, including those nested in collapsed rows."""
    out: list[dict[str, Any]] = []
    for panel in dashboard.get("panels", []):
        out.append(panel)
        out.extend(panel.get("panels", []))
    return out


def dashboard_queries_of(dashboard: dict[str, Any]) -> list[PanelQuery]:
    return [
        PanelQuery(p["id"], p["title"], t["refId"], t["expr"], bool(t.get("instant")))
        for p in iter_panels(dashboard)
        for t in p.get("targets", [])
    ]


#: Grafana variables the dashboard's queries may use.
GRAFANA_VARIABLES = ("$__rate_interval", "$job", "$instance")


def substitute(expr: str, *, job: str = ".*", instance: str = ".*", rate: str = "5m") -> str:
    """``expr`` with the Grafana variables replaced as Grafana would; fails on any other one."""
    out = expr.replace("$__rate_interval", rate).replace("$job", job).replace("$instance", instance)
    leftover = re.findall(r"\$\{?\w+", out)
    assert not leftover, f"unknown Grafana variable(s) {leftover} in {expr!r}"
    return out


@pytest.fixture(scope="session")
def dashboard() -> dict[str, Any]:
    text = DASHBOARD_PATH.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        pytest.fail(f"{DASHBOARD_PATH} is not valid JSON: {exc}", pytrace=False)
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="session")
def dashboard_queries(dashboard: dict[str, Any]) -> list[PanelQuery]:
    return dashboard_queries_of(dashboard)


# ----------------------------------------------------------------------------- rules


@pytest.fixture(scope="session")
def rules() -> dict[str, Any]:
    data = yaml.safe_load(RULES_PATH.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{RULES_PATH} is not a mapping"
    assert "groups" in data, f"{RULES_PATH} has no top-level groups:"
    return data


@pytest.fixture(scope="session")
def alert_rules(rules: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for g in rules["groups"] for r in g["rules"] if "alert" in r]


def markdown_anchors(text: str) -> set[str]:
    """GitHub-style anchors of the headings in a Markdown text."""
    anchors: set[str] = set()
    in_code = False
    for line in text.splitlines():
        if line.startswith("```"):
            in_code = not in_code
            continue
        m = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m and not in_code:
            slug = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-")
            anchors.add(slug)
    return anchors


@pytest.fixture(scope="session")
def obs() -> SimpleNamespace:
    """The helpers of this conftest, for the test modules (which cannot import it)."""
    return SimpleNamespace(
        PromQL=PromQL,
        substitute=substitute,
        markdown_anchors=markdown_anchors,
        iter_panels=iter_panels,
        find_binary=find_binary,
        ROOT=ROOT,
        DASHBOARD_PATH=DASHBOARD_PATH,
        RULES_PATH=RULES_PATH,
        RULES_TEST_PATH=RULES_TEST_PATH,
        RUNBOOK_PATH=RUNBOOK_PATH,
        OBSERVABILITY_DOC_PATH=OBSERVABILITY_DOC_PATH,
        RULES_JOB_MATCHER=RULES_JOB_MATCHER,
        GRAFANA_VARIABLES=GRAFANA_VARIABLES,
    )
