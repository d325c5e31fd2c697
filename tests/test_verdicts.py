"""Verdicts against the retrain reference and its noise floor: hand-made cases, orientation, and planted methods
(a no-op and a collapse) run through the real pipeline beside the negative and positive controls."""

from __future__ import annotations

from dataclasses import dataclass, replace

import pytest
import torch

from conftest import QUICK_RECIPE
from erasekit.audit.metrics import predict_logits
from erasekit.audit.unlearning import UnlearningMetrics, majority_rate, output_change
from erasekit.audit.verdicts import VERDICTS, MethodEvidence, VerdictRules, judge
from erasekit.core.errors import MethodError
from erasekit.core.params import Params
from erasekit.data import ForgetSpec
from erasekit.models import ModelSpec
from erasekit.pipelines.unlearning import ExperimentConfig, OriginalModel, Scenario, run_experiment
from erasekit.unlearn import METHODS, MethodInfo, method_info, parse_method_list

REFERENCE = UnlearningMetrics(forget_acc=0.90, retain_acc=0.99, test_acc=0.95, mia_efficacy=0.10, entropy_member_rate=0.3)
FLOOR = UnlearningMetrics(forget_acc=0.01, retain_acc=0.002, test_acc=0.005, mia_efficacy=0.02, entropy_member_rate=0.05)


def evidence(change: float = 0.2, identical: bool = False, diverged: bool = False, **metrics) -> MethodEvidence:
    return MethodEvidence(replace(REFERENCE, **metrics), change, identical, diverged)


def test_tolerance_is_twice_the_floor_and_at_least_one_point():
    rules = VerdictRules()
    assert rules.tolerance(0.03) == pytest.approx(0.06) and rules.tolerance(0.001) == 0.01
    assert rules.utility_tolerance(0.03) == pytest.approx(0.06) and rules.utility_tolerance(0.001) == 0.02
    with pytest.raises(MethodError, match="floor_multiplier must be > 0"):
        VerdictRules(floor_multiplier=0)


@pytest.mark.parametrize(
    "case, expected",
    [
        (evidence(), "matches_retrain"),  # exactly retrain's numbers
        (evidence(forget_acc=0.915, mia_efficacy=0.07), "matches_retrain"),  # 1.5 and 3 points: within 2 × floor
        (evidence(forget_acc=0.99, mia_efficacy=0.03), "under_forgets"),  # more accurate, looks more like a member
        (evidence(forget_acc=0.60, mia_efficacy=0.45), "over_forgets"),  # less familiar than under retrain
        (evidence(identical=True, forget_acc=0.99), "no_change"),
        (evidence(change=0.0, forget_acc=0.99), "no_change"),  # outputs identical even if weights differ
        (evidence(diverged=True), "damaged"),
        (evidence(test_acc=0.11), "damaged"),  # at the majority rate
        (evidence(retain_acc=0.90), "damaged"),  # 9 points below retrain
        (evidence(retain_acc=0.95), "damaged"),  # forgets like retrain but 4 points below it (utility tolerance 2)
        (evidence(test_acc=0.935), "matches_retrain"),  # 1.5 points below: within the utility tolerance
        (evidence(retain_acc=1.0, test_acc=0.97), "matches_retrain"),  # better than retrain is not damage
    ],
)
def test_verdicts_by_hand(case, expected):
    verdict = judge(case, REFERENCE, FLOOR, majority_rate=0.10)
    assert verdict.verdict == expected, verdict.reason
    assert verdict.verdict in VERDICTS and verdict.reason


def test_direction_is_not_flipped():
    """Orientation: higher forget accuracy is less forgetting; higher MIA-efficacy is more forgetting."""
    assert judge(evidence(forget_acc=0.95), REFERENCE, FLOOR, 0.1).verdict == "under_forgets"
    assert judge(evidence(forget_acc=0.85), REFERENCE, FLOOR, 0.1).verdict == "over_forgets"
    assert judge(evidence(mia_efficacy=0.05), REFERENCE, FLOOR, 0.1).verdict == "under_forgets"
    assert judge(evidence(mia_efficacy=0.20), REFERENCE, FLOOR, 0.1).verdict == "over_forgets"


def test_majority_rate_and_output_change_by_hand(trained_mlp, digits):
    assert majority_rate(torch.tensor([0, 0, 1, 2]).numpy()) == 0.5

    def logits(model):
        return [predict_logits(model, digits.test)[0]]

    assert output_change(logits(trained_mlp), logits(trained_mlp)) == 0.0
    other = ModelSpec("mlp", digits.input_shape, 10).build(seed=1)
    assert output_change(logits(other), logits(trained_mlp)) > 0.5
    broken = ModelSpec("mlp", digits.input_shape, 10).build(seed=1)
    with torch.no_grad():
        broken[1].weight.fill_(float("nan"))
    assert output_change(logits(broken), logits(trained_mlp)) == float("inf")


# ------------------------------------------------------------------ planted methods through the real pipeline


@dataclass(frozen=True)
class _NoParams(Params):
    pass


def _noop(task, params):
    """Planted: returns an exact copy of the original."""
    return task.copy_model()


def _collapse(task, params):
    """Planted: zeroes every weight, so the model predicts one class."""
    model = task.copy_model()
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
    return model


@pytest.fixture
def planted():
    for name, fn in (("planted_noop", _noop), ("planted_collapse", _collapse)):
        METHODS.add(MethodInfo(name=name, params_type=_NoParams, fn=fn, summary="planted", exact=False))
    yield
    for name in ("planted_noop", "planted_collapse"):
        METHODS._records.pop(name)


def test_controls_and_planted_methods_get_the_right_verdicts(planted, digits, digits_spec):
    config = ExperimentConfig(
        data=digits,
        data_spec="digits",
        original=OriginalModel(digits_spec, QUICK_RECIPE),
        scenarios=(Scenario("forget class 3", ForgetSpec.classes(3)),),
        methods=("planted_noop", "planted_collapse", "salun"),
        seeds=1,
    )
    scenario = run_experiment(config).scenarios[0]
    verdicts = {row.name: row.verdict for row in scenario.methods}
    assert verdicts["original"] == "no_change"  # negative control
    assert verdicts["independent_retrain"] == "matches_retrain"  # positive control: the floor is not too tight
    assert verdicts["planted_noop"] == "no_change"
    assert verdicts["planted_collapse"] == "damaged"
    assert scenario.reference.verdict is None and scenario.reference.noise_floor is not None
    assert scenario.discriminates  # class forgetting changes the forget set a lot
    best = scenario.best_method()
    assert best is None or best.verdict == "matches_retrain"


def test_all_runs_only_methods_that_fit_the_request():
    assert "boundary_shrink" in parse_method_list("all")
    assert not method_info("boundary_shrink").fits("random") and method_info("boundary_shrink").fits("class")
    assert all(info.fits("random") for info in METHODS if info.name != "boundary_shrink")


def test_skipped_methods_are_reported(digits, digits_spec):
    config = ExperimentConfig(
        data=digits,
        data_spec="digits",
        original=OriginalModel(digits_spec, QUICK_RECIPE),
        scenarios=(Scenario("forget 10%", ForgetSpec.random(0.1)),),
        methods=("boundary_shrink", "ssd"),
        fit_methods_to_scenario=True,
    )
    scenario = run_experiment(config).scenarios[0]
    assert [row.name for row in scenario.methods] == ["original", "independent_retrain", "ssd"]
    assert scenario.skipped and "boundary_shrink: designed for class forgetting" in scenario.skipped[0]


def test_per_example_score_has_a_ceiling_and_flags_the_original(digits, digits_spec):
    config = ExperimentConfig(
        data=digits,
        data_spec="digits",
        original=OriginalModel(digits_spec, QUICK_RECIPE),
        scenarios=(Scenario("forget class 3", ForgetSpec.classes(3)), Scenario("forget 10%", ForgetSpec.random(0.1))),
        methods=(),
        seeds=3,
    )
    class_scenario, random_scenario = run_experiment(config).scenarios
    rows = {row.name: row for row in class_scenario.methods}
    original, ceiling = rows["original"].per_example, rows["independent_retrain"].per_example
    # positive control: retraining from other seeds scores above the untouched original, which scores 0
    assert original.neurips_score == 0.0
    assert ceiling.neurips_score > original.neurips_score
    # the likelihood-ratio attack tells the original's runs from retraining on the forgotten class; not a second retrain
    assert original.attack.auc > 0.95 and original.attack.tpr_at_1pct_fpr > 0.5
    assert abs(ceiling.attack.auc - 0.5) < 0.15
    assert original.klom_forget_p95 > ceiling.klom_forget_p95
    # a random request draws a new forget set per seed: no per-example comparison across runs
    assert all(row.per_example is None for row in random_scenario.methods)
