"""Experiment aggregation, the report schema, JSON/HTML rendering, atomic writes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import QUICK_RECIPE
from erasekit.data import ForgetSpec
from erasekit.pipelines.unlearning import ExperimentConfig, OriginalModel, Scenario, run_experiment
from erasekit.report import to_html, write_report, writer
from erasekit.unlearn import FinetuneParams


@pytest.fixture(scope="module")
def report(digits, digits_spec):
    config = ExperimentConfig(
        data=digits,
        data_spec="digits",
        original=OriginalModel(digits_spec, QUICK_RECIPE),
        scenarios=(Scenario("forget class 3", ForgetSpec.classes(3)), Scenario("forget 10%", ForgetSpec.random(0.1))),
        methods=("ssd", "finetune"),
        params={"finetune": FinetuneParams(epochs=1)},
        seeds=2,
    )
    return run_experiment(config)


def test_report_rows_and_aggregation(report):
    class_report = report.scenarios[0]
    assert class_report.scenario.forget.size == 146
    names = [m.name for m in class_report.methods]
    assert names == ["original", "independent_retrain", "ssd", "finetune"]
    assert class_report.reference.name == "retrain" and class_report.reference.avg_gap == 0.0
    control = class_report.methods[0]
    assert control.role == "negative_control" and control.speedup is None
    finetune = class_report.methods[3]
    assert finetune.params.epochs == 1
    assert len(finetune.runs) == 2
    # mean/std over seeds are the mean/std of the per-seed records
    per_seed = [r.metrics.forget_acc for r in finetune.runs]
    assert finetune.metrics.forget_acc == pytest.approx(np.mean(per_seed))
    assert finetune.metrics_std.forget_acc == pytest.approx(np.std(per_seed))
    assert finetune.avg_gap == pytest.approx(np.mean([r.avg_gap for r in finetune.runs]))
    assert finetune.speedup == pytest.approx(class_report.reference.seconds / finetune.seconds)
    # different seeds train different originals
    assert len(set(finetune.provenance.weights_sha256_before)) == 2
    assert finetune.provenance.seeds == (0, 1)
    # the negative control for class forgetting is far from retrain; retrain forgets the class
    assert class_report.reference.metrics.forget_acc == 0.0
    assert control.avg_gap > 0.3


def test_json_schema(report, tmp_path):
    json_path, html_path = write_report(report, tmp_path / "out")
    data = json.loads(json_path.read_text())
    assert data["schema"] == "erasekit.unlearning-report/4"
    for scenario in data["scenarios"]:
        assert {"scenario", "reference", "methods"} <= set(scenario)
        assert scenario["scenario"]["data"]["sha256"] == data["provenance"]["data_sha256"]
        for row in [scenario["reference"], *scenario["methods"]]:
            assert {"name", "params", "seconds", "speedup", "metrics", "gap", "avg_gap", "provenance"} <= set(row)
            assert set(row["metrics"]) == {"forget_acc", "retain_acc", "test_acc", "mia_efficacy", "entropy_member_rate"}
            assert all(0.0 <= v <= 1.0 for v in row["metrics"].values())
            provenance = row["provenance"]
            assert {"erasekit", "torch", "numpy", "scikit-learn"} <= set(provenance["versions"])
            assert {
                "versions",
                "hardware",
                "created_at",
                "seeds",
                "data_sha256",
                "weights_sha256_before",
                "weights_sha256_after",
            } <= set(provenance)
            assert len(provenance["weights_sha256_after"]) == len(provenance["seeds"]) == 2
    assert html_path.exists()


def test_html_is_self_contained(report):
    html = to_html(report)
    assert html.count("data:image/png;base64,") == 4  # two plots per scenario
    assert html.index("Verdicts") < html.index("Metrics"), "the report leads with the verdicts"
    assert "no change" in html and "matches retrain" in html
    assert "How to read this report" in html
    assert 'src="http' not in html and "<script" not in html
    assert "± " in html  # two seeds: mean ± std


def test_failed_render_writes_nothing(report, tmp_path, monkeypatch):
    def broken(_report):
        raise RuntimeError("render failed")

    monkeypatch.setattr(writer, "to_html", broken)
    with pytest.raises(RuntimeError):
        writer.write_report(report, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert not list(tmp_path.iterdir()), "no staging folder is left behind"
