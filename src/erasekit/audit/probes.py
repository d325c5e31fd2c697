"""Probes that try to recover a concept from (erased) features, on a held-out split.

A probe is trained on the training split and scored on the held-out split; its score is
compared with the constant baseline (the training majority class for categorical concepts,
R² = 0 for numeric ones) through a bootstrap 95 % confidence interval over held-out
examples. Run the same probes on the original features as the positive control.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np

from erasekit.core.errors import ConceptError
from erasekit.core.extras import require

PROBES = ("linear", "mlp", "gbm")
ProbeName = Literal["linear", "mlp", "gbm"]


@dataclass(frozen=True)
class ProbeResult:
    """One probe on one representation.

    ``score``: held-out accuracy (categorical concept) or R² (numeric), with its bootstrap
    95 % CI ``[ci_low, ci_high]``. ``baseline``: what a constant predictor scores. Direction:
    a score at the baseline means the probe found nothing; above it, the concept leaks.
    """

    probe: ProbeName
    metric: Literal["accuracy", "r2"]
    score: float
    ci_low: float
    ci_high: float
    baseline: float
    json_properties: ClassVar[tuple[str, ...]] = ("leaks",)

    @property
    def leaks(self) -> bool:
        """The CI lies entirely above the baseline: the probe recovers the concept."""
        return self.ci_low > self.baseline

    @property
    def covers_baseline(self) -> bool:
        return self.ci_low <= self.baseline <= self.ci_high


def _make_probe(name: ProbeName, numeric: bool, seed: int):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if name == "linear":
        from sklearn.linear_model import LinearRegression, LogisticRegression

        # unpenalised (C = inf): the strongest linear probe, matching LEACE's guarantee
        model = LinearRegression() if numeric else LogisticRegression(C=np.inf, max_iter=2000)
        return make_pipeline(StandardScaler(), model)
    if name == "mlp":
        from sklearn.neural_network import MLPClassifier, MLPRegressor

        kind = MLPRegressor if numeric else MLPClassifier
        return make_pipeline(
            StandardScaler(), kind(hidden_layer_sizes=(64,), max_iter=300, early_stopping=True, random_state=seed)
        )
    if name == "gbm":
        lightgbm = require("lightgbm", "the gbm probe (or leave it out: --probes linear,mlp)")
        kind = lightgbm.LGBMRegressor if numeric else lightgbm.LGBMClassifier
        return kind(n_estimators=200, learning_rate=0.05, num_leaves=31, random_state=seed, verbose=-1, n_jobs=2)
    raise ConceptError(f"unknown probe '{name}'; choose from {', '.join(PROBES)}")


def bootstrap_ci(per_example: np.ndarray, statistic, seed: int, n_boot: int = 1000) -> tuple[float, float]:
    """Percentile 95 % interval of ``statistic`` over bootstrap resamples of held-out examples."""
    rng = np.random.default_rng(seed)
    n = len(per_example)
    draws = np.array([statistic(per_example[rng.integers(0, n, n)]) for _ in range(n_boot)])
    low, high = np.percentile(draws, [2.5, 97.5])
    return float(low), float(high)


def _r2(pairs: np.ndarray) -> float:
    truth, predicted = pairs[:, 0], pairs[:, 1]
    total = np.sum((truth - truth.mean()) ** 2)
    return float(1 - np.sum((truth - predicted) ** 2) / total) if total > 0 else 0.0


def run_probe(
    name: ProbeName, x_train, z_train, x_test, z_test, numeric: bool = False, seed: int = 0, n_boot: int = 1000
) -> ProbeResult:
    """Train probe ``name`` on the training split and score it on the held-out split."""
    x_train, x_test = np.asarray(x_train, dtype=np.float64), np.asarray(x_test, dtype=np.float64)
    z_train, z_test = np.asarray(z_train), np.asarray(z_test)
    if len(x_train) != len(z_train) or len(x_test) != len(z_test):
        raise ConceptError("probe features and concept labels differ in length")
    probe = _make_probe(name, numeric, seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter from probes on erased (uninformative) data
        probe.fit(x_train, z_train)
        predicted = probe.predict(x_test)
    if numeric:
        pairs = np.column_stack([z_test.astype(np.float64), predicted])
        score = _r2(pairs)
        low, high = bootstrap_ci(pairs, _r2, seed, n_boot)
        return ProbeResult(name, "r2", score, low, high, 0.0)
    correct = (predicted == z_test).astype(np.float64)
    values, counts = np.unique(z_train, return_counts=True)
    baseline = float(np.mean(z_test == values[np.argmax(counts)]))
    low, high = bootstrap_ci(correct, np.mean, seed, n_boot)
    return ProbeResult(name, "accuracy", float(correct.mean()), low, high, baseline)


def probe_all(
    x_train, z_train, x_test, z_test, numeric: bool = False, probes=PROBES, seed: int = 0, n_boot: int = 1000
) -> tuple[ProbeResult, ...]:
    return tuple(run_probe(p, x_train, z_train, x_test, z_test, numeric, seed, n_boot) for p in probes)


def linear_verdict(results: tuple[ProbeResult, ...]) -> str:
    """ "linearly guarded" only when the linear probe's CI covers the baseline."""
    linear = next((r for r in results if r.probe == "linear"), None)
    if linear is None:
        return "not assessed (no linear probe)"
    if linear.covers_baseline:
        return "linearly guarded"
    if linear.leaks:
        return "linear leakage"
    return "inconclusive (linear probe below baseline)"


def cross_covariance_norm(x, z_matrix) -> float:
    """Frobenius norm of the held-out cross-covariance Cov(X, Z) (0 after perfect linear erasure)."""
    x = np.asarray(x, dtype=np.float64)
    z = np.asarray(z_matrix, dtype=np.float64).reshape(len(x), -1)
    cov = (x - x.mean(0)).T @ (z - z.mean(0)) / max(len(x) - 1, 1)
    return float(np.linalg.norm(cov))


def mean_squared_edit(original, erased) -> float:
    """Mean over samples of ‖x − r(x)‖² — how much the eraser changed the data."""
    diff = np.asarray(original, dtype=np.float64) - np.asarray(erased, dtype=np.float64)
    return float(np.mean(np.sum(diff**2, axis=1)))
