"""Probe audit: hand-checkable CIs and baselines, orientation, and the verdict rule."""

from __future__ import annotations

import numpy as np
import pytest

from erasekit.audit.probes import (
    ProbeResult,
    bootstrap_ci,
    cross_covariance_norm,
    linear_verdict,
    mean_squared_edit,
    probe_all,
    run_probe,
)
from erasekit.concepts import fit_eraser


def test_bootstrap_ci_of_a_constant_is_that_constant():
    assert bootstrap_ci(np.ones(50), np.mean, seed=0) == (1.0, 1.0)
    low, high = bootstrap_ci(np.r_[np.ones(500), np.zeros(500)], np.mean, seed=0)
    assert low < 0.5 < high and high - low < 0.08  # ±1.96·sqrt(.25/1000) ≈ ±0.031


def test_majority_baseline_comes_from_the_training_split():
    x = np.zeros((10, 1))
    result = run_probe("linear", x, np.array([1] * 7 + [0] * 3), x[:4], np.array([1, 1, 0, 0]))
    assert result.baseline == 0.5  # train majority is 1; it is right on 2 of 4 held-out labels


def test_verdict_rule():
    def linear(score, low, high, baseline=0.5):
        return (ProbeResult("linear", "accuracy", score, low, high, baseline),)

    assert linear_verdict(linear(0.51, 0.48, 0.54)) == "linearly guarded"
    assert linear_verdict(linear(0.70, 0.66, 0.74)) == "linear leakage"
    assert linear_verdict(linear(0.40, 0.36, 0.44)).startswith("inconclusive")


def test_edit_size_and_cross_covariance_hand_computed():
    assert mean_squared_edit([[0, 0], [1, 1]], [[0, 1], [1, 1]]) == 0.5
    x = np.array([[1.0], [2.0], [3.0]])
    z = np.array([1.0, 2.0, 3.0])
    assert cross_covariance_norm(x, z) == pytest.approx(1.0)  # sample covariance of (1,2,3) with itself


def test_probes_detect_then_lose_a_linear_concept():
    """Positive control and erasure with the same probes: leak before, guarded after."""
    rng = np.random.default_rng(0)
    z = rng.integers(0, 2, 4000)
    x = rng.normal(size=(4000, 6))
    x[:, 0] += 1.2 * z
    before = probe_all(x[:2000], z[:2000], x[2000:], z[2000:], probes=("linear", "gbm"), n_boot=200)
    assert all(r.leaks for r in before)
    eraser = fit_eraser(x[:2000], z[:2000], "leace")
    erased = eraser(x)
    after = probe_all(erased[:2000], z[:2000], erased[2000:], z[2000:], probes=("linear",), n_boot=200)
    assert linear_verdict(before) == "linear leakage" and linear_verdict(after) == "linearly guarded"


def test_nonlinear_leakage_is_visible_after_linear_erasure():
    """LEACE promises nothing against nonlinear probes; the audit must show it."""
    rng = np.random.default_rng(1)
    z = rng.integers(0, 2, 4000)
    x = rng.normal(size=(4000, 4))
    x[:, 0] = np.where(z == 1, rng.normal(0, 3, 4000), rng.normal(0, 0.5, 4000))  # variance, not mean, carries z
    erased = fit_eraser(x[:2000], z[:2000], "leace")(x)
    linear, gbm = probe_all(erased[:2000], z[:2000], erased[2000:], z[2000:], probes=("linear", "gbm"), n_boot=200)
    assert not linear.leaks and gbm.leaks
