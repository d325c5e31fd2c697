"""Interpreting a black-box model on high-dimensional data through its top-k features.

:func:`interpret_black_box` ranks the features by probing the trained model — how often its own
prediction changes when one feature is shuffled on held-out rows (no labels needed) — fits an
interpretable surrogate (a shallow decision tree) on the top-k features to mimic the black box,
and reports the surrogate's fidelity (agreement with the black box on held-out rows; R² against
its outputs for a regression), its decision rules and a few local explanations (the rule path of
single rows). A low fidelity says the k features, or the depth, do not explain the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from erasekit.core.errors import FieldError


@dataclass(frozen=True)
class LocalExplanation:
    row: int  # position in the held-out rows
    black_box: str  # the black box's prediction
    surrogate: str  # the surrogate's
    path: tuple[str, ...]  # the conditions the row satisfied, root first


@dataclass(frozen=True)
class TopKInterpretation:
    """What the black box relies on, and how well a small tree on those features reproduces it."""

    task: str
    k: int
    features: tuple[str, ...]  # the top k, most relied-on first
    reliance: dict[
        str, float
    ]  # every feature: share of held-out predictions that change when it is shuffled (mean squared change / variance for a regression)
    surrogate_depth: int
    fidelity: float  # surrogate vs black box on held-out rows: agreement, or R² against its outputs
    fidelity_train: float
    rules: str  # the surrogate's decision rules
    local: tuple[LocalExplanation, ...]


def _predict(model, X: np.ndarray, regression: bool) -> np.ndarray:
    out = model.predict(X)
    return np.asarray(out, dtype=np.float64) if regression else np.asarray(out)


def probe_reliance(model, X: np.ndarray, regression: bool, n_repeats: int = 3, seed: int = 0) -> np.ndarray:
    """Per feature: how much the model's own predictions move when that feature is shuffled (no labels)."""
    rng = np.random.default_rng(seed)
    reference = _predict(model, X, regression)
    spread = float(np.var(reference)) if regression else 1.0
    reliance = np.zeros(X.shape[1])
    for j in range(X.shape[1]):
        changes = []
        for _ in range(n_repeats):
            shuffled = X.copy()
            shuffled[:, j] = X[rng.permutation(len(X)), j]
            moved = _predict(model, shuffled, regression)
            changes.append(np.mean((moved - reference) ** 2) / max(spread, 1e-12) if regression else np.mean(moved != reference))
        reliance[j] = float(np.mean(changes))
    return reliance


def interpret_black_box(
    model,
    X_train: np.ndarray,
    X_held: np.ndarray,
    k: int = 10,
    max_depth: int = 3,
    feature_names: Sequence[str] | None = None,
    task: str = "classification",
    n_repeats: int = 3,
    explain_rows: int = 3,
    seed: int = 0,
) -> TopKInterpretation:
    """Probe ``model`` (fitted, with ``predict``), keep its top-``k`` features, mimic it with a depth-``max_depth`` tree."""
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor, export_text

    X_train, X_held = np.asarray(X_train, dtype=np.float64), np.asarray(X_held, dtype=np.float64)
    if X_train.ndim != 2 or X_held.ndim != 2 or X_train.shape[1] != X_held.shape[1]:
        raise FieldError(f"X_train and X_held must be 2-D with the same columns, got {X_train.shape} and {X_held.shape}")
    n_features = X_train.shape[1]
    if not 1 <= k <= n_features:
        raise FieldError(f"k={k} is out of range: the data has {n_features} features; choose 1 ≤ k ≤ {n_features}")
    if task not in ("classification", "regression"):
        raise FieldError(f"task must be 'classification' or 'regression', got '{task}'")
    names = tuple(str(n) for n in feature_names) if feature_names is not None else tuple(f"x{j}" for j in range(n_features))
    if len(names) != n_features:
        raise FieldError(f"{len(names)} feature names for {n_features} features")
    regression = task == "regression"
    reliance = probe_reliance(model, X_held, regression, n_repeats, seed)
    top = np.lexsort((np.arange(n_features), -reliance))[:k]
    target_train, target_held = _predict(model, X_train, regression), _predict(model, X_held, regression)
    tree_type = DecisionTreeRegressor if regression else DecisionTreeClassifier
    surrogate = tree_type(max_depth=max_depth, random_state=seed).fit(X_train[:, top], target_train)
    top_names = [names[j] for j in top]
    local = []
    paths = surrogate.decision_path(X_held[:explain_rows, top])
    tree = surrogate.tree_
    for row in range(min(explain_rows, len(X_held))):
        conditions = []
        for node in paths.indices[paths.indptr[row] : paths.indptr[row + 1]]:
            if tree.children_left[node] == tree.children_right[node]:  # a leaf
                continue
            feature, threshold = tree.feature[node], tree.threshold[node]
            side = "≤" if X_held[row, top[feature]] <= threshold else ">"
            conditions.append(f"{top_names[feature]} {side} {threshold:.4g}")
        prediction = surrogate.predict(X_held[row : row + 1, top])[0]
        local.append(LocalExplanation(row, str(target_held[row]), str(prediction), tuple(conditions)))
    return TopKInterpretation(
        task=task,
        k=int(k),
        features=tuple(top_names),
        reliance=dict(zip(names, reliance.tolist())),
        surrogate_depth=int(surrogate.get_depth()),
        fidelity=float(surrogate.score(X_held[:, top], target_held)),
        fidelity_train=float(surrogate.score(X_train[:, top], target_train)),
        rules=export_text(surrogate, feature_names=top_names, decimals=4),
        local=tuple(local),
    )
