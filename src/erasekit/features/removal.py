"""Greedy backward elimination by retraining: the exact (and expensive) removal reference."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import check_scoring

from erasekit.core import progress
from erasekit.features.base import (
    FRACTION_CONSTRAINT,
    Family,
    FieldScores,
    RankingSelector,
    SelectionData,
    held_out_split,
    register_selector,
)


@dataclass
class Elimination:
    """Outcome of backward elimination over ``n`` features.

    ``ranking`` (1 = best): features removed later rank better; the ``stop`` survivors
    rank 1..stop by how much score each would lose if removed from the final set. ``scores``: validation score lost when the feature was
    removed (for survivors: when it would be removed from the final set) — larger = more
    important. ``seconds_at``: elapsed time when only that many features remained.
    """

    ranking: np.ndarray
    scores: np.ndarray
    seconds_at: dict[int, float] = field(default_factory=dict)
    fits: int = 0


def backward_eliminate(
    n: int, score_subset: Callable[[list[int]], float], stop: int = 1, description: str = "backward elimination"
) -> Elimination:
    """Repeatedly drop the feature whose removal leaves the best validation score, until ``stop`` remain.

    ``score_subset(columns)`` retrains on those columns and returns the validation score
    (higher is better); it must also accept an empty list (the no-feature baseline).
    """
    remaining = list(range(n))
    ranking = np.ones(n, dtype=np.int64)
    scores = np.zeros(n)
    seconds_at: dict[int, float] = {}
    start = time.perf_counter()
    current = score_subset(remaining)
    fits = 1
    total = sum(range(max(stop, 1) + 1, n + 1)) + stop
    with progress.step(description, total) as advance:
        while len(remaining) > stop:
            without = []
            for candidate in remaining:
                without.append(score_subset([j for j in remaining if j != candidate]))
                fits += 1
                advance(1)
            best = int(np.argmax(without))
            dropped = remaining.pop(best)
            ranking[dropped] = len(remaining) + 1
            scores[dropped] = current - without[best]
            current = without[best]
            seconds_at[len(remaining)] = time.perf_counter() - start
        for candidate in remaining:
            scores[candidate] = current - score_subset([j for j in remaining if j != candidate])
            fits += 1
            advance(1)
    # Survivors are ordered among themselves by the score they would lose if removed last.
    for position, j in enumerate(sorted(remaining, key=lambda j: (-scores[j], j)), start=1):
        ranking[j] = position
    return Elimination(ranking, scores, seconds_at, fits)


@register_selector("removal")
class RemovalSelector(RankingSelector):
    """Backward elimination: retrain without each candidate, drop the one whose absence hurts least.

    Each round refits a clone of ``estimator`` (default: logistic regression) once per
    remaining feature on the fitting split and scores it on the held-out
    ``validation_fraction`` (``scoring``: a scikit-learn scorer name, default the
    estimator's own score). On a field table with ``estimator=None`` it retrains the table's
    CTR backbone and scores validation AUC. It eliminates down to ``k`` features when ``k``
    is given and to one otherwise (or with ``full_ranking=True``), so ``ranking_`` then orders
    every feature. Cost: about k·(n − k) + n²/2 fits — this is the exact reference that
    cheaper selectors are measured against. ``seconds_at_`` maps "features remaining" to
    elapsed seconds, to compare costs at equal k.
    """

    family: ClassVar[Family] = "exact"
    _parameter_constraints: ClassVar[dict] = {
        **RankingSelector._parameter_constraints,
        "validation_fraction": [FRACTION_CONSTRAINT],
        "scoring": [str, callable, None],
        "full_ranking": ["boolean"],
        "estimator": "no_validation",
    }

    def __init__(self, estimator=None, k=None, validation_fraction=0.25, scoring=None, full_ranking=False, random_state=0):
        self.estimator = estimator
        self.k = k
        self.validation_fraction = validation_fraction
        self.scoring = scoring
        self.full_ranking = full_ranking
        self.random_state = random_state

    def _stop(self, n: int) -> int:
        return 1 if self.full_ranking or self.k is None else self._resolve_k(n)

    def _eliminate(self, n: int, score_subset: Callable[[list[int]], float]) -> tuple[np.ndarray, np.ndarray]:
        result = backward_eliminate(n, score_subset, stop=self._stop(n))
        self.seconds_at_ = result.seconds_at
        self.n_fits_ = result.fits
        self.extra_ = {**{f"seconds_at_k{k}": s for k, s in result.seconds_at.items()}, "fits": float(result.fits)}
        return result.scores, result.ranking

    def _rank(self, X, y):
        X_fit, X_held, y_fit, y_held = held_out_split(X, y, self.validation_fraction, self.random_state)
        return self._eliminate(X.shape[1], self._estimator_scorer(X_fit, y_fit, X_held, y_held))

    def _estimator_scorer(self, X_fit, y_fit, X_held, y_held) -> Callable[[list[int]], float]:
        from sklearn.dummy import DummyClassifier

        template = self.estimator if self.estimator is not None else LogisticRegression(max_iter=1000)

        def score_subset(columns: list[int]) -> float:
            if not columns:
                dummy = DummyClassifier(strategy="prior").fit(X_fit[:, :1], y_fit)
                return float(check_scoring(dummy, scoring=self.scoring)(dummy, X_held[:, :1], y_held))
            model = clone(template).fit(X_fit[:, columns], y_fit)
            return float(check_scoring(model, scoring=self.scoring)(model, X_held[:, columns], y_held))

        return score_subset

    def rank_fields(self, data: SelectionData) -> FieldScores:
        if self.estimator is not None:
            return super().rank_fields(data)
        from erasekit.models.ctr import evaluate, fresh_model, train_ctr

        self.check_params()
        names = data.names
        seed = self.random_state

        def score_subset(columns: list[int]) -> float:
            if not columns:
                return 0.5
            chosen = [names[j] for j in columns]
            train, valid = data.train.select(chosen), data.valid.select(chosen)
            model = train_ctr(
                fresh_model(train.fields, data.spec, seed),
                train,
                valid,
                data.recipe,
                seed=seed,
                description=f"retrain on {len(chosen)} fields",
            )
            return evaluate(model, valid).auc

        self.n_features_in_ = len(names)
        self.k_ = self._resolve_k(len(names))
        scores, ranking = self._eliminate(len(names), score_subset)
        self._set_result(scores, ranking)
        return FieldScores(self.scores_, self.ranking_, dict(self.extra_))
