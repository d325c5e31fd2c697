"""The concept-erasure report: probes before/after with CIs, verdict, utility, edit size.

``report.json`` (schema ``erasekit.concept-report/1``): ``source`` (embeddings or table,
sizes, SHA-256), ``concept`` (what was erased, its kind), ``method`` and ``params``,
``fit_seconds``, ``probes`` (one row per representation × probe: ``score``, ``ci_low``,
``ci_high``, ``baseline``, ``metric``), ``verdict`` per representation ("linearly guarded"
only when the linear probe's 95 % CI covers the baseline), ``utility`` (main-task accuracy
per representation, tables only), ``edit`` (mean squared edit size; held-out
cross-covariance norm before/after) and ``provenance``.
"""

from __future__ import annotations

import base64
import io
from dataclasses import asdict, dataclass

import jinja2

from erasekit.audit.probes import ProbeResult

SCHEMA = "erasekit.concept-report/1"


@dataclass(frozen=True)
class ProbeRow:
    representation: str  # e.g. "original", "erased", "dropped", "dropped+leace"
    target: str  # the concept or removed column probed
    result: ProbeResult


@dataclass(frozen=True)
class ConceptReport:
    source: dict
    concept: dict
    method: str
    params: dict
    fit_seconds: float
    probes: tuple[ProbeRow, ...]
    verdicts: dict[str, str]
    utility: dict[str, float]
    edit: dict[str, float]
    provenance: dict
    created_at: str
    command: str = ""
    schema: str = SCHEMA

    def to_dict(self) -> dict:
        data = asdict(self)
        data["probes"] = [
            {"representation": r.representation, "target": r.target, **asdict(r.result), "leaks": r.result.leaks}
            for r in self.probes
        ]
        return data


def _plot(report: ConceptReport) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    reps = list(dict.fromkeys(r.representation for r in report.probes))
    probes = list(dict.fromkeys(r.result.probe for r in report.probes))
    fig, ax = plt.subplots(figsize=(7, 3.8))
    width = 0.8 / max(len(probes), 1)
    for k, probe in enumerate(probes):
        rows = [next((r.result for r in report.probes if r.representation == rep and r.result.probe == probe), None) for rep in reps]
        xs = [i + (k - (len(probes) - 1) / 2) * width for i in range(len(reps))]
        scores = [r.score if r else 0 for r in rows]
        errors = [[max(r.score - r.ci_low, 0) if r else 0 for r in rows], [max(r.ci_high - r.score, 0) if r else 0 for r in rows]]
        ax.bar(xs, scores, width, yerr=errors, capsize=3, label=f"{probe} probe")
    baseline = report.probes[0].result.baseline if report.probes else 0
    ax.axhline(baseline, color="black", ls="--", lw=1, label="constant baseline")
    ax.set_xticks(range(len(reps)), reps)
    ax.set_ylabel(report.probes[0].result.metric if report.probes else "score")
    ax.set_title(f"Can probes recover '{report.concept.get('name', 'the concept')}'? (held-out, 95 % CI)", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def concept_html(report: ConceptReport) -> str:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("erasekit", "report/templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
    )
    return environment.get_template("concepts.html").render(report=report, plot=_plot(report))
