"""The one renderer: any report dataclass → JSON text and a self-contained HTML page.

Each report type names its jinja2 template (``template``); the plots a template shows are
drawn here with matplotlib (Agg) and embedded as PNG. Rendering computes nothing about the
removal itself: the numbers come from the pipelines.
"""

from __future__ import annotations

import base64
import dataclasses
import enum
import io
import json
import math
from pathlib import PurePath
from typing import Any

import jinja2
import numpy as np

from erasekit.audit.unlearning import GAP_METRICS
from erasekit.report.concepts import ConceptReport
from erasekit.report.selection import SelectionBenchReport
from erasekit.report.unlearning import Report, ScenarioReport

METRIC_LABELS = {
    "forget_acc": "Forget acc",
    "retain_acc": "Retain acc",
    "test_acc": "Test acc",
    "mia_efficacy": "MIA-efficacy",
    "entropy_member_rate": "Entropy-MIA member",
}


def jsonable(value: Any) -> Any:
    """A JSON-ready copy of ``value``: dataclasses field by field (plus a probe's ``leaks``), mappings
    with string keys, tuples and arrays as lists, numpy scalars as Python numbers."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        data = {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
        for name in getattr(value, "json_properties", ()):
            data[name] = jsonable(getattr(value, name))
        return data
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # NamedTuple: a pair like (mean, std)
        return [jsonable(v) for v in value]
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (PurePath, enum.Enum)):
        return str(value.value if isinstance(value, enum.Enum) else value)
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN/inf; a missing number reads as null
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if callable(value) and hasattr(value, "__qualname__"):  # a recipe's custom loss or optimiser: its name
        return f"{value.__module__}.{value.__qualname__}"
    return repr(value)


def to_json(report: Any) -> str:
    return json.dumps(jsonable(report), indent=2, allow_nan=False) + "\n"


def _png(figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _plots(scenario: ScenarioReport) -> dict[str, str]:
    plt = _pyplot()
    methods = [m for m in scenario.methods if m.role == "method"]
    control = next((m for m in scenario.methods if m.role == "negative_control"), None)
    plots = {}

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for m in methods:
        ax.scatter(m.speedup, 100 * m.avg_gap, s=42, zorder=3)
        ax.annotate(m.name, (m.speedup, 100 * m.avg_gap), textcoords="offset points", xytext=(5, 4), fontsize=8)
    if control is not None:
        ax.axhline(100 * control.avg_gap, color="grey", ls="--", lw=1, label="original (no unlearning)")
        ax.legend(loc="best", fontsize=8)
    ax.axvline(1.0, color="black", lw=0.6)
    ax.set_xscale("log")
    ax.margins(x=0.18, y=0.08)  # room for the method labels at the edges
    ax.set_xlabel("speed-up vs retrain (×, log scale; right is cheaper)")
    ax.set_ylabel("Avg. Gap to retrain (points; lower is better)")
    ax.set_title(scenario.scenario.name, fontsize=10)
    ax.grid(alpha=0.3, which="both")
    plots["tradeoff"] = _png(fig)
    plt.close(fig)

    rows = ([control] if control else []) + methods
    fig, ax = plt.subplots(figsize=(max(6.4, 0.75 * len(rows) + 2), 4.2))
    width = 0.8 / len(GAP_METRICS)
    for k, metric in enumerate(GAP_METRICS):
        xs = [i + (k - (len(GAP_METRICS) - 1) / 2) * width for i in range(len(rows))]
        ax.bar(xs, [100 * getattr(m.gap, metric) for m in rows], width, label=METRIC_LABELS[metric])
    ax.set_xticks(range(len(rows)), [m.name for m in rows], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("|method − retrain| (points)")
    ax.set_title(f"Per-metric gap to retrain — {scenario.scenario.name}", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    plots["gaps"] = _png(fig)
    plt.close(fig)
    return plots


def _concept_plot(report: ConceptReport) -> str:
    plt = _pyplot()
    reps = list(dict.fromkeys(r.representation for r in report.probes))
    probes = list(dict.fromkeys(r.result.probe for r in report.probes))
    fig, ax = plt.subplots(figsize=(7, 3.8))
    width = 0.8 / max(len(probes), 1)
    for k, probe in enumerate(probes):
        rows = [
            next((r.result for r in report.probes if r.representation == rep and r.result.probe == probe), None) for rep in reps
        ]
        xs = [i + (k - (len(probes) - 1) / 2) * width for i in range(len(reps))]
        scores = [r.score if r else 0 for r in rows]
        errors = [[max(r.score - r.ci_low, 0) if r else 0 for r in rows], [max(r.ci_high - r.score, 0) if r else 0 for r in rows]]
        ax.bar(xs, scores, width, yerr=errors, capsize=3, label=f"{probe} probe")
    baseline = report.probes[0].result.baseline if report.probes else 0
    ax.axhline(baseline, color="black", ls="--", lw=1, label="constant baseline")
    ax.set_xticks(range(len(reps)), reps)
    ax.set_ylabel(report.probes[0].result.metric if report.probes else "score")
    ax.set_title(f"Can probes recover '{report.concept.name}'? (held-out, 95 % CI)", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    data = _png(fig)
    plt.close(fig)
    return data


def _selection_plot(report: SelectionBenchReport) -> str:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.6))
    for row in report.summary:
        means = [row.auc[k].mean for k in report.ks]
        stds = [row.auc[k].std for k in report.ks]
        style = "--" if row.family == "gate" else ("-." if row.family == "exact" else "-")
        ax.errorbar(report.ks, means, yerr=stds, ls=style, marker="o", ms=3.5, capsize=2, label=row.method)
    full = np.mean([s.auc for s in report.full_model.values()])
    ax.axhline(full, color="black", lw=1, ls=":", label="all fields")
    ax.set_xlabel("k (fields kept; backbone retrained from scratch)")
    ax.set_ylabel("test AUC")
    ax.set_title(
        f"{report.dataset}: test AUC vs number of kept fields (mean ± std over {len(report.seeds)} seed(s))", fontsize=10
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7.5, ncol=2)
    data = _png(fig)
    plt.close(fig)
    return data


def _pct(value: float, std: float | None = None, seeds: int = 1) -> str:
    text = f"{100 * value:.1f}"
    if std is not None and seeds > 1:
        text += f" ± {100 * std:.1f}"
    return text


def _speedup(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.1f}×" if value < 100 else f"{value:.0f}×"


def _fields(value: Any) -> str:
    """``name=value`` pairs of a dataclass's non-empty fields, for a details line."""
    if not dataclasses.is_dataclass(value) or isinstance(value, type):
        return "" if value is None else str(value)
    pairs = []
    for item in dataclasses.fields(value):
        shown = getattr(value, item.name)
        if shown in ("", (), None):
            continue
        if isinstance(shown, tuple):
            shown = ", ".join(map(str, shown))
        pairs.append(f"{item.name}={shown}")
    return " · ".join(pairs)


def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("erasekit", "report/templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
    )
    environment.filters["pct"] = _pct
    environment.filters["speedup"] = _speedup
    environment.filters["fields"] = _fields
    return environment


def _context(report: Any) -> dict[str, Any]:
    """What each report type's template needs besides the report itself (plots, derived display values)."""
    if isinstance(report, Report):
        scenarios = [
            {"report": s, "plots": _plots(s), "best": s.best_method(), "seeds": len(s.scenario.seeds)} for s in report.scenarios
        ]
        return {"scenarios": scenarios, "metrics": list(METRIC_LABELS), "labels": METRIC_LABELS, "list": list}
    if isinstance(report, ConceptReport):
        return {"plot": _concept_plot(report)}
    if isinstance(report, SelectionBenchReport):
        return {
            "summary": report.summary,
            "plot": _selection_plot(report),
            "full_auc": float(np.mean([s.auc for s in report.full_model.values()])),
            "backbone_seconds": float(np.mean(list(report.backbone_seconds.values()))),
        }
    return {}


def to_html(report: Any) -> str:
    """The report's self-contained HTML page (its ``template``, with plots embedded)."""
    template = getattr(report, "template", None)
    if template is None:
        raise TypeError(f"{type(report).__name__} has no HTML template")
    return _environment().get_template(template).render(report=report, **_context(report))
