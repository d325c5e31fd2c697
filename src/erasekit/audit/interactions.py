"""Feature-interaction scores across a Rashomon set: how much a pair's interaction depends on which good model you look at.

Many models fit the data almost equally well (the Rashomon set); one model's interaction score is
one draw from it. :func:`rashomon_interactions` trains ``n_models`` LightGBM models with varied
seeds and hyperparameters, keeps those whose held-out loss is within ``epsilon`` (relative) of the
best, and scores every pair of the chosen features in each kept model with the permutation
interaction of Li et al. (FIS in a Rashomon set, the "FIS cloud"):

    I(i, j) = L(perm i, j) − L(perm i) − L(perm j) + L(none)

where L is the held-out loss (log loss, or mean squared error for a regression) with those
features shuffled — the loss increase of shuffling both beyond the sum of shuffling each. It is 0
for features that act additively; its size measures the interaction, and it is negative when
shuffling either one alone already destroys what the two carry together (an XOR). Each pair
reports its mean, standard deviation, minimum and maximum over the set, and every model's score;
pairs are listed by the size of their mean.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from erasekit.core import progress
from erasekit.core.errors import FieldError


@dataclass(frozen=True)
class PairInteraction:
    features: tuple[str, str]
    mean: float
    std: float
    min: float
    max: float
    per_model: tuple[float, ...]


@dataclass(frozen=True)
class RashomonInteractions:
    task: str
    models_trained: int
    set_size: int  # models within epsilon of the best held-out loss
    epsilon: float
    best_loss: float
    losses: tuple[float, ...]  # held-out loss of every kept model
    pairs: tuple[PairInteraction, ...]  # largest |mean| first


def _loss(model, X: np.ndarray, y: np.ndarray, regression: bool) -> float:
    if regression:
        return float(np.mean((model.predict(X) - y) ** 2))
    from sklearn.metrics import log_loss

    return float(log_loss(y, model.predict_proba(X), labels=model.classes_))


def _shuffled_loss(model, X, y, columns, regression, rng, repeats) -> float:
    losses = []
    for _ in range(repeats):
        shuffled = X.copy()
        order = rng.permutation(len(X))
        for j in columns:  # one permutation for the pair: their joint distribution is kept, their link to the rest broken
            shuffled[:, j] = X[order, j]
        losses.append(_loss(model, shuffled, y, regression))
    return float(np.mean(losses))


def rashomon_interactions(
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_held: np.ndarray,
    y_held: np.ndarray,
    features: Sequence[int] | None = None,
    feature_names: Sequence[str] | None = None,
    task: str = "classification",
    n_models: int = 20,
    epsilon: float = 0.05,
    repeats: int = 3,
    seed: int = 0,
) -> RashomonInteractions:
    """Interaction scores of every pair of ``features`` (default: the 6 with most split gain) over a Rashomon set."""
    from erasekit.core.extras import require

    lightgbm = require("lightgbm", "Rashomon-set interaction scores")
    X_train, X_held = np.asarray(X_train, dtype=np.float64), np.asarray(X_held, dtype=np.float64)
    y_train, y_held = np.asarray(y_train), np.asarray(y_held)
    if task not in ("classification", "regression"):
        raise FieldError(f"task must be 'classification' or 'regression', got '{task}'")
    if n_models < 2 or not epsilon > 0:
        raise FieldError(f"a Rashomon set needs n_models ≥ 2 and epsilon > 0, got {n_models} and {epsilon}")
    regression = task == "regression"
    names = tuple(str(n) for n in feature_names) if feature_names is not None else tuple(f"x{j}" for j in range(X_train.shape[1]))
    rng = np.random.default_rng(seed)
    models, losses = [], []
    with progress.step("Rashomon set", n_models) as advance:
        for index in range(n_models):
            params = dict(
                n_estimators=int(rng.choice([100, 200, 300])),
                learning_rate=float(rng.choice([0.03, 0.05, 0.1])),
                num_leaves=int(rng.choice([7, 15, 31])),
                subsample=float(rng.choice([0.7, 0.85, 1.0])),
                subsample_freq=1,
                colsample_bytree=float(rng.choice([0.7, 0.85, 1.0])),
                random_state=seed + index,
                verbose=-1,
                n_jobs=1,
            )
            model = (lightgbm.LGBMRegressor if regression else lightgbm.LGBMClassifier)(**params).fit(X_train, y_train)
            models.append(model)
            losses.append(_loss(model, X_held, y_held, regression))
            advance(1)
    best = min(losses)
    kept = [m for m, loss in zip(models, losses) if loss <= best * (1 + epsilon)]
    if features is None:
        gain = np.sum([m.booster_.feature_importance("gain") for m in kept], axis=0)
        features = np.argsort(-gain, kind="stable")[:6].tolist()
    features = [int(j) for j in features]
    if len(features) < 2 or any(not 0 <= j < X_train.shape[1] for j in features):
        raise FieldError(f"give at least two feature positions in 0..{X_train.shape[1] - 1}, got {features}")
    pairs = list(itertools.combinations(features, 2))
    scores = np.zeros((len(kept), len(pairs)))
    with progress.step("interaction scores", len(kept)) as advance:
        for m, model in enumerate(kept):
            probe = np.random.default_rng(seed + 1000 + m)
            base = _loss(model, X_held, y_held, regression)
            single = {j: _shuffled_loss(model, X_held, y_held, [j], regression, probe, repeats) for j in features}
            for p, (i, j) in enumerate(pairs):
                both = _shuffled_loss(model, X_held, y_held, [i, j], regression, probe, repeats)
                scores[m, p] = both - single[i] - single[j] + base
            advance(1)
    results = [
        PairInteraction(
            (names[i], names[j]),
            float(scores[:, p].mean()),
            float(scores[:, p].std()),
            float(scores[:, p].min()),
            float(scores[:, p].max()),
            tuple(scores[:, p].tolist()),
        )
        for p, (i, j) in enumerate(pairs)
    ]
    results.sort(key=lambda pair: -abs(pair.mean))
    return RashomonInteractions(
        task=task,
        models_trained=n_models,
        set_size=len(kept),
        epsilon=float(epsilon),
        best_loss=float(best),
        losses=tuple(float(loss) for loss in losses if loss <= best * (1 + epsilon)),
        pairs=tuple(results),
    )
