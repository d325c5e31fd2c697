"""Render a :class:`Report` to ``report.json`` and a self-contained ``report.html``.

Both documents are rendered in memory first and then written atomically, so a failure
leaves no half-written report behind.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import jinja2

from erasekit._io import atomic_write_text
from erasekit.audit.unlearning import GAP_METRICS
from erasekit.report.schema import Report, ScenarioReport

METRIC_LABELS = {
    "forget_acc": "Forget acc",
    "retain_acc": "Retain acc",
    "test_acc": "Test acc",
    "mia_efficacy": "MIA-efficacy",
    "entropy_member_rate": "Entropy-MIA member",
}


def to_json(report: Report) -> str:
    return json.dumps(report.to_dict(), indent=2, allow_nan=False, default=_jsonable) + "\n"


def _jsonable(value):
    if isinstance(value, tuple):
        return list(value)
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def _png(figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _plots(scenario: ScenarioReport) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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


def _pct(value: float, std: float | None = None, seeds: int = 1) -> str:
    text = f"{100 * value:.1f}"
    if std is not None and seeds > 1:
        text += f" ± {100 * std:.1f}"
    return text


def _speedup(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.1f}×" if value < 100 else f"{value:.0f}×"


def to_html(report: Report) -> str:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("erasekit", "report/templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
    )
    environment.filters["pct"] = _pct
    environment.filters["speedup"] = _speedup
    template = environment.get_template("unlearning.html")
    scenarios = [
        {"report": s, "plots": _plots(s), "best": s.best_method(), "seeds": len(s.scenario.seeds)}
        for s in report.scenarios
    ]
    return template.render(report=report, scenarios=scenarios, metrics=list(METRIC_LABELS), labels=METRIC_LABELS, list=list)


def write_report(report: Report, out_dir: Path) -> tuple[Path, Path]:
    """Write ``report.json`` and ``report.html`` into ``out_dir``; returns their paths."""
    out_dir = Path(out_dir)
    json_text = to_json(report)
    html_text = to_html(report)
    json_path, html_path = out_dir / "report.json", out_dir / "report.html"
    atomic_write_text(json_path, json_text)
    atomic_write_text(html_path, html_text)
    return json_path, html_path
