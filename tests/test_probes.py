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
    # at or below the baseline within its CI: guarded (an R² interval of [-0.004, -0.000] must reach a verdict)
    assert linear_verdict(linear(0.40, 0.36, 0.44)) == "linearly guarded"
    r2 = (ProbeResult("linear", "r2", -0.002, -0.004, -0.0001, 0.0),)
    assert linear_verdict(r2) == "linearly guarded"
    # without a working positive control nothing can be concluded
    failed_control = ProbeResult("linear", "accuracy", 0.50, 0.46, 0.54, 0.5)
    assert linear_verdict(linear(0.51, 0.48, 0.54), failed_control).startswith("not assessed")
    working_control = ProbeResult("linear", "accuracy", 0.90, 0.88, 0.92, 0.5)
    assert linear_verdict(linear(0.51, 0.48, 0.54), working_control) == "linearly guarded"


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


# ------------------------------------------------------------------ floating-point residue


def _residue_data(n=800, seed=0):
    """Column 0: noise; column 1: ~1e-19 · z — the concept, but only in rounding residue (like a dead ReLU unit after
    an edit computed in floating point)."""
    rng = np.random.default_rng(seed)
    z = rng.integers(0, 2, n)
    x = np.column_stack([rng.normal(size=n), 1e-19 * (z + 0.1 * rng.normal(size=n))])
    return x[: n // 2], z[: n // 2], x[n // 2 :], z[n // 2 :]


def test_probes_do_not_amplify_rounding_residue():
    from erasekit.audit.probes import near_constant_columns, residue_probe, run_probe

    x_train, z_train, x_test, z_test = _residue_data()
    assert near_constant_columns(x_train).tolist() == [False, True]
    result = run_probe("linear", x_train, z_train, x_test, z_test, n_boot=200)
    assert not result.leaks and result.ignored_columns == 1
    gbm = run_probe("gbm", x_train, z_train, x_test, z_test, n_boot=200)
    assert not gbm.leaks
    # positive control: the residue is there, and an amplifying probe reads it perfectly
    residue = residue_probe(x_train, z_train, x_test, z_test, n_boot=200)
    assert residue is not None and residue.leaks and residue.score > 0.95
    # a signal at the data's scale is not mistaken for residue
    x_big = x_train.copy()
    x_big[:, 1] = 0.5 * z_train
    assert not near_constant_columns(x_big).any()


def test_leace_keeps_constant_columns_exact_so_no_residue_follows_the_concept():
    import torch
    from concept_erasure import LeaceEraser

    rng = np.random.default_rng(0)
    z = rng.integers(0, 2, 600)
    x = rng.normal(size=(600, 5))
    x[:, 0] += 2 * z
    x[:, 2] = 0.0  # a dead unit
    eraser = fit_eraser(x, z, "leace")
    erased = eraser(x)
    assert eraser.constant_columns.tolist() == [False, False, True, False, False]
    assert (erased[:, 2] == 0.0).all()
    # positive control: the raw library edit writes residue that follows z into the dead unit
    raw = LeaceEraser(eraser.proj_left, eraser.proj_right, eraser.bias)(torch.as_tensor(x)).numpy()
    assert np.abs(raw[:, 2]).max() > 0 and abs(np.corrcoef(raw[:, 2], z)[0, 1]) > 0.3
    # the other columns are exactly the library's
    assert np.array_equal(np.delete(erased, 2, axis=1), np.delete(raw, 2, axis=1))
