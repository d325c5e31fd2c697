"""The NeurIPS 2023 per-example score: hand-computed pieces, orientation, the peaky rule, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

from erasekit.audit.per_example import (
    EPSILON_CAP,
    _epsilon,
    attack_result,
    example_epsilon,
    klom,
    likelihood_ratio,
    logit_scaled_confidence,
    neurips_score,
    tpr_at_fpr,
    u_lira,
)
from erasekit.core.errors import ErasekitError


def test_logit_scaled_confidence_by_hand():
    conf = logit_scaled_confidence(np.array([[0.0, 0.0], [math.log(3), 0.0], [0.0, math.log(3)]]), np.array([0, 0, 0]))
    assert conf == pytest.approx([0.0, math.log(3), -math.log(3)], abs=1e-6)  # log(p_y) − log(Σ others)


def test_epsilon_formula_by_hand():
    delta = 1e-5
    expected = max(math.log(1 - delta - 0.1) - math.log(0.2), math.log(1 - delta - 0.2) - math.log(0.1))
    assert _epsilon(np.array([0.1]), np.array([0.2]), delta) == pytest.approx(expected)
    assert _epsilon(np.array([0.0]), np.array([0.0]), delta) == math.inf  # a perfect rule
    assert _epsilon(np.array([0.0]), np.array([0.3]), delta) == 0.0  # one error rate at 0: discarded


def test_separated_runs_are_capped_and_identical_runs_score_zero():
    rng = np.random.default_rng(0)
    far = example_epsilon(rng.normal(0, 1, 16), rng.normal(20, 1, 16))
    assert far == EPSILON_CAP
    same = rng.normal(0, 1, 16)
    assert example_epsilon(same, same.copy()) == pytest.approx(0.0, abs=1e-4)


def test_peaky_outputs_get_the_cap():
    """A deterministic method run N times from one original gives N identical outputs: ε = cap by construction."""
    assert example_epsilon(np.full(8, 1.5), np.linspace(0, 3, 8)) == EPSILON_CAP


def test_score_orientation_and_utility_scaling():
    rng = np.random.default_rng(1)
    retrained = rng.normal(0, 1, (8, 40))
    like_retrain = neurips_score(rng.normal(0, 1, (8, 40)), retrained)
    memorised = neurips_score(rng.normal(6, 1, (8, 40)), retrained)  # far more confident: still a member
    assert like_retrain.forget_score > memorised.forget_score  # higher = more like retrain
    assert memorised.forget_score == 0.0
    identical = neurips_score(retrained, retrained)
    assert identical.forget_score == 1.0 and identical.peaky_fraction == 0.0
    halved = neurips_score(retrained, retrained, retain_accuracy=(0.5, 1.0))
    assert halved.final == pytest.approx(0.5)
    peaky = neurips_score(np.zeros((8, 5)), retrained[:, :5])
    assert peaky.forget_score == 0.0 and peaky.peaky_fraction == 1.0


def test_bad_input():
    with pytest.raises(ErasekitError, match="at least 3 runs"):
        neurips_score(np.zeros((2, 4)), np.zeros((2, 4)))
    with pytest.raises(ErasekitError, match=r"\[runs, examples\]"):
        neurips_score(np.zeros((4, 4)), np.zeros((4, 5)))


# --- U-LiRA ----------------------------------------------------------------------------------


def test_likelihood_ratio_matches_a_hand_computed_value():
    # in-runs 0 and 2 (mean 1, variance 2), out-runs 3 and 5 (mean 4, variance 2), target 1:
    # log N(1; 1, √2) − log N(1; 4, √2) = 0 + 9 / (2·2) = 2.25
    ratio = likelihood_ratio([1.0], [[0.0], [2.0]], [[3.0], [5.0]])
    assert ratio == pytest.approx([2.25])
    # orientation: a target that looks like the out-runs gets a negative ratio
    assert likelihood_ratio([4.0], [[0.0], [2.0]], [[3.0], [5.0]])[0] < 0


def test_pooled_variance_uses_the_mean_of_per_example_variances():
    inside = np.array([[0.0, 0.0], [2.0, 4.0]])  # per-example variances 2 and 8 → pooled 5
    outside = np.array([[0.0, 0.0], [2.0, 4.0]])
    target = np.array([10.0, 10.0])
    pooled = likelihood_ratio(target, inside, outside, pooled_variance=True)
    per_example = likelihood_ratio(target, inside, outside, pooled_variance=False)
    assert pooled == pytest.approx([0.0, 0.0]) and per_example == pytest.approx([0.0, 0.0])  # same sides: ratio 0
    # first example: in-mean 2, out-mean 1, target 10 → ((10−1)² − (10−2)²)/(2σ²)
    assert likelihood_ratio(target, inside + 1.0, outside, pooled_variance=True)[0] == pytest.approx((81 - 64) / (2 * 5))
    assert likelihood_ratio(target, inside + 1.0, outside, pooled_variance=False)[0] == pytest.approx((81 - 64) / (2 * 2))


def test_auc_and_tpr_at_low_fpr_by_hand():
    result = attack_result([0.9, 0.8, 0.7, 0.1], [True, False, True, False])
    assert result.auc == pytest.approx(0.75)  # 3 of 4 positive-negative pairs ordered right
    assert result.tpr_at_1pct_fpr == pytest.approx(0.5)  # only the top positive above every negative
    assert (result.positives, result.negatives) == (2, 2)
    assert tpr_at_fpr([0.9, 0.8, 0.7, 0.1], [1, 0, 1, 0], 0.5) == pytest.approx(1.0)
    with pytest.raises(ErasekitError, match="both positive and negative"):
        attack_result([0.1, 0.2], [True, True])


def test_u_lira_detects_membership_and_not_a_second_retrain():
    rng = np.random.default_rng(0)
    per_example = rng.normal(0, 2, size=200)  # each example has its own difficulty
    retrained = per_example + rng.normal(0, 0.5, size=(8, 200))
    members = per_example + 3.0 + rng.normal(0, 0.5, size=(8, 200))  # trained on: more confident
    retrained_again = per_example + rng.normal(0, 0.5, size=(8, 200))
    assert u_lira(members, retrained).auc > 0.95  # positive control: membership is visible
    assert abs(u_lira(retrained_again, retrained).auc - 0.5) < 0.05
    # orientation: a method that over-forgets (less confident than retrain) is also told apart
    assert u_lira(per_example - 3.0 + rng.normal(0, 0.5, size=(8, 200)), retrained).auc > 0.95


def test_u_lira_refuses_too_few_runs_and_mismatched_shapes():
    with pytest.raises(ErasekitError, match="at least 3 runs"):
        u_lira(np.zeros((2, 5)), np.zeros((2, 5)))
    with pytest.raises(ErasekitError, match="must both be"):
        u_lira(np.zeros((3, 5)), np.zeros((3, 4)))


# --- KLOM ------------------------------------------------------------------------------------


def test_klom_matches_a_hand_computed_value():
    # 2 bins over [0, 1]: unlearned counts (2, 0) and retrained (1, 1), each bin + 0.5 →
    # p = (2.5, 0.5)/3, q = (0.5, 0.5): KL = p1 ln(p1/q1) + p2 ln(p2/q2)
    p = np.array([2.5, 0.5]) / 3
    expected = float((p * np.log(p / 0.5)).sum())
    assert klom([[0.0], [0.0]], [[0.0], [1.0]], bins=2) == pytest.approx([expected])
    assert klom([[0.0], [1.0]], [[0.0], [1.0]], bins=2) == pytest.approx([0.0])


def test_klom_grows_as_runs_separate_and_clips_margins():
    rng = np.random.default_rng(1)
    base = rng.normal(0, 1, size=(16, 50))
    near = klom(base + 0.1, base)
    far = klom(base + 5.0, base)
    assert far.mean() > near.mean()
    clipped = klom(np.full((3, 1), 1e9), np.full((3, 1), 100.0))
    assert clipped == pytest.approx([0.0])  # both clip to +100: the same histogram


def test_klom_refuses_mismatched_examples():
    with pytest.raises(ErasekitError, match="KLOM needs"):
        klom(np.zeros((3, 4)), np.zeros((3, 5)))
