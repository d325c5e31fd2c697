"""The NeurIPS 2023 per-example score: hand-computed pieces, orientation, the peaky rule, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

from erasekit.audit.per_example import EPSILON_CAP, _epsilon, example_epsilon, logit_scaled_confidence, neurips_score
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
