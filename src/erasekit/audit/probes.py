"""Probes that try to recover a concept from (erased) features, on a held-out split.

A probe is trained on the training split and scored on the held-out split; its score is
compared with the constant baseline (the training majority class for categorical concepts,
R² = 0 for numeric ones) through a bootstrap 95 % confidence interval over held-out
examples. Run the same probes on the original features as the positive control.

Columns whose variation is below floating-point precision of the data's scale (range at most
``RESIDUE_RELATIVE`` × the largest column range on the training split) are left out of every
probe: standardising them would divide by ~1e-19 and turn rounding residue into a "signal".
:func:`residue_probe` reports separately whether such residue follows the concept.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np

from erasekit.core.errors import ConceptError
from erasekit.core.extras import require

PROBES = ("linear", "mlp", "gbm")
RESIDUE_RELATIVE = 1e-9
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
    ignored_columns: int = 0  # near-constant columns left out (variation below floating-point precision)
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
        # on separable data (the concept still in the columns) the unpenalised fit never converges; its accuracy
        # has saturated long before 500 iterations, and erased data converges in a few dozen
        model = LinearRegression() if numeric else LogisticRegression(C=np.inf, max_iter=500)
        return make_pipeline(StandardScaler(), model)
    if name == "mlp":
        from sklearn.neural_network import MLPClassifier, MLPRegressor

        kind = MLPRegressor if numeric else MLPClassifier
        return make_pipeline(
            StandardScaler(),
            kind(hidden_layer_sizes=(64,), max_iter=300, early_stopping=True, n_iter_no_change=5, random_state=seed),
        )
    if name == "gbm":
        lightgbm = require("lightgbm", "the gbm probe (or leave it out: --probes linear,mlp)")
        kind = lightgbm.LGBMRegressor if numeric else lightgbm.LGBMClassifier
        # one thread: probes are small, and LightGBM's OpenMP threads spin against torch's when cores are busy
        # (an erase of a 6,000-row table took minutes with n_jobs=2 on a loaded 2-core machine, seconds with 1)
        return kind(n_estimators=200, learning_rate=0.05, num_leaves=31, random_state=seed, verbose=-1, n_jobs=1)
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


def near_constant_columns(x_train: np.ndarray, relative: float = RESIDUE_RELATIVE) -> np.ndarray:
    """Columns whose range on the training split is at most ``relative`` × the largest column range (bool ``[d]``)."""
    x = np.asarray(x_train, dtype=np.float64).reshape(len(x_train), -1)
    if x.size == 0:
        return np.zeros(x.shape[1], dtype=bool)
    spread = x.max(axis=0) - x.min(axis=0)
    return spread <= relative * max(float(spread.max()), np.finfo(np.float64).tiny)


def run_probe(
    name: ProbeName, x_train, z_train, x_test, z_test, numeric: bool = False, seed: int = 0, n_boot: int = 1000
) -> ProbeResult:
    """Train probe ``name`` on the training split and score it on the held-out split (near-constant columns left out)."""
    x_train, x_test = np.asarray(x_train, dtype=np.float64), np.asarray(x_test, dtype=np.float64)
    z_train, z_test = np.asarray(z_train), np.asarray(z_test)
    if len(x_train) != len(z_train) or len(x_test) != len(z_test):
        raise ConceptError("probe features and concept labels differ in length")
    ignored = near_constant_columns(x_train)
    return _score_probe(
        name, x_train[:, ~ignored], z_train, x_test[:, ~ignored], z_test, numeric, seed, n_boot, int(ignored.sum())
    )


def residue_probe(
    x_train, z_train, x_test, z_test, numeric: bool = False, seed: int = 0, n_boot: int = 1000
) -> ProbeResult | None:
    """The linear probe on the near-constant columns only, standardised — what an amplifying probe would read.

    ``None`` when there are no near-constant columns, or they are exactly constant (no residue at all).
    A score above the baseline means rounding residue in those columns follows the concept: not
    information at the data's scale, but a finding to report (an eraser should keep such columns exact).
    """
    x_train, x_test = np.asarray(x_train, dtype=np.float64), np.asarray(x_test, dtype=np.float64)
    columns = near_constant_columns(x_train)
    varying = columns & (x_train.max(axis=0) > x_train.min(axis=0))
    if not varying.any():
        return None
    return _score_probe("linear", x_train[:, varying], z_train, x_test[:, varying], z_test, numeric, seed, n_boot, 0)


def _score_probe(name, x_train, z_train, x_test, z_test, numeric, seed, n_boot, ignored) -> ProbeResult:
    z_train, z_test = np.asarray(z_train), np.asarray(z_test)
    if x_train.shape[1] == 0:  # nothing left to probe: the constant prediction
        from sklearn.dummy import DummyClassifier, DummyRegressor

        probe = DummyRegressor() if numeric else DummyClassifier(strategy="most_frequent")
    else:
        probe = _make_probe(name, numeric, seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter from probes on erased (uninformative) data
        probe.fit(x_train if x_train.shape[1] else np.zeros((len(x_train), 1)), z_train)
        predicted = probe.predict(x_test if x_test.shape[1] else np.zeros((len(x_test), 1)))
    if numeric:
        pairs = np.column_stack([z_test.astype(np.float64), predicted])
        score = _r2(pairs)
        low, high = bootstrap_ci(pairs, _r2, seed, n_boot)
        return ProbeResult(name, "r2", score, low, high, 0.0, ignored)
    correct = (predicted == z_test).astype(np.float64)
    values, counts = np.unique(z_train, return_counts=True)
    baseline = float(np.mean(z_test == values[np.argmax(counts)]))
    low, high = bootstrap_ci(correct, np.mean, seed, n_boot)
    return ProbeResult(name, "accuracy", float(correct.mean()), low, high, baseline, ignored)


def probe_all(
    x_train, z_train, x_test, z_test, numeric: bool = False, probes=PROBES, seed: int = 0, n_boot: int = 1000
) -> tuple[ProbeResult, ...]:
    return tuple(run_probe(p, x_train, z_train, x_test, z_test, numeric, seed, n_boot) for p in probes)


def linear_verdict(results: tuple[ProbeResult, ...], positive_control: ProbeResult | None = None) -> str:
    """ "linear leakage" when the linear probe's 95 % CI lies above the baseline; "linearly guarded" when it is at or
    below the baseline within its CI. With a ``positive_control`` (the same probe on the data before erasure) that
    did not find the concept, nothing can be concluded."""
    linear = next((r for r in results if r.probe == "linear"), None)
    if linear is None:
        return "not assessed (no linear probe)"
    if positive_control is not None and not positive_control.leaks:
        return "not assessed (the linear probe did not find the concept before erasure either)"
    return "linear leakage" if linear.leaks else "linearly guarded"


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
