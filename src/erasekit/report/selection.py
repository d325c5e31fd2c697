"""The field-selection benchmark report: AUC-vs-k curves, AUKC, precision@k, cost, removal strategies.

``report.json`` (schema ``erasekit.selection-bench/1``) is :meth:`SelectionBenchReport.to_dict`;
``report.html`` is self-contained (plots embedded as PNG).
"""

from __future__ import annotations

import json
from pathlib import Path

import jinja2
import numpy as np

from erasekit._io import atomic_write_text
from erasekit.features.harness import SelectionBenchReport
from erasekit.report.render import _jsonable, _png


def selection_json(report: SelectionBenchReport) -> str:
    return json.dumps(report.to_dict(), indent=2, allow_nan=False, default=_jsonable) + "\n"


def _curve_plot(report: SelectionBenchReport) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.6))
    for row in report.summary():
        means = [row["auc"][k][0] for k in report.ks]
        stds = [row["auc"][k][1] for k in report.ks]
        style = "--" if row["family"] == "gate" else ("-." if row["family"] == "exact" else "-")
        ax.errorbar(report.ks, means, yerr=stds, ls=style, marker="o", ms=3.5, capsize=2, label=row["method"])
    full = np.mean([s.auc for s in report.full_model.values()])
    ax.axhline(full, color="black", lw=1, ls=":", label="all fields")
    ax.set_xlabel("k (fields kept; backbone retrained from scratch)")
    ax.set_ylabel("test AUC")
    ax.set_title(f"{report.dataset}: test AUC vs number of kept fields (mean ± std over {len(report.seeds)} seed(s))", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7.5, ncol=2)
    data = _png(fig)
    plt.close(fig)
    return data


def selection_html(report: SelectionBenchReport) -> str:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("erasekit", "report/templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
    )
    full_auc = float(np.mean([s.auc for s in report.full_model.values()]))
    backbone = float(np.mean(list(report.backbone_seconds.values())))
    return environment.get_template("selection.html").render(
        report=report, summary=report.summary(), plot=_curve_plot(report), full_auc=full_auc, backbone_seconds=backbone)


def write_selection_report(report: SelectionBenchReport, out_dir: Path) -> tuple[Path, Path]:
    """Render both documents in memory, then write ``report.json`` and ``report.html`` atomically."""
    json_text, html_text = selection_json(report), selection_html(report)
    out_dir = Path(out_dir)
    json_path, html_path = out_dir / "report.json", out_dir / "report.html"
    atomic_write_text(json_path, json_text)
    atomic_write_text(html_path, html_text)
    return json_path, html_path
