"""Greedy backward elimination by retraining: the exact (and expensive) removal reference."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from numbers import Real
from typing import ClassVar

import numpy as np
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import check_scoring
from sklearn.utils._param_validation import Interval, StrOptions

from erasekit.core import progress
from erasekit.core.errors import FieldError
from erasekit.features.base import (
    FRACTION_CONSTRAINT,
    TASKS,
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

    ``ranking`` (1 = best): features removed later rank better; the survivors rank 1..m by how
    much score each would lose if removed from the final set. ``scores``: validation score lost
    when the feature was removed (for survivors: when it would be removed from the final set) —
    larger = more important. ``seconds_at``: elapsed time when only that many features remained.
    ``complete`` is False when the time budget ran out: the features still in play are then ranked
    by the last round's removal losses (the result so far).
    """

    ranking: np.ndarray
    scores: np.ndarray
    seconds_at: dict[int, float] = field(default_factory=dict)
    fits: int = 0
    complete: bool = True


def elimination_fits(n: int, stop: int, step: float | None) -> int:
    """Fits backward elimination makes from ``n`` features down to ``stop``: one per candidate per round, plus
    one per round that drops several, plus the final round that scores the survivors."""
    remaining, fits = n, 1
    while remaining > stop:
        fits += remaining
        drop = 1 if step is None else max(1, min(remaining - stop, math.ceil(step * remaining)))
        fits += 1 if drop > 1 else 0
        remaining -= drop
    return fits + remaining


def elimination_cost(n: int, stop: int, step: float | None) -> float:
    """The same elimination's cost in units of one fit on all ``n`` features, a fit on m features costing m/n of one
    (the estimators here scale about linearly in the column count; the running budget check catches the rest)."""
    remaining, cost = n, 1.0
    while remaining > stop:
        cost += remaining * (remaining - 1) / n
        drop = 1 if step is None else max(1, min(remaining - stop, math.ceil(step * remaining)))
        cost += (remaining - drop) / n if drop > 1 else 0.0
        remaining -= drop
    return cost + remaining * (remaining - 1) / n


def backward_eliminate(
    n: int,
    score_subset: Callable[[list[int]], float],
    stop: int = 1,
    description: str = "backward elimination",
    step: float | None = None,
    budget_seconds: float | None = None,
) -> Elimination:
    """Repeatedly drop the feature(s) whose removal leaves the best validation score, until ``stop`` remain.

    ``score_subset(columns)`` retrains on those columns and returns the validation score
    (higher is better); it must also accept an empty list (the no-feature baseline).
    ``step=None`` drops one feature per round (the exact greedy reference); a fraction drops that
    share of the remaining features per round — those whose removal hurt least — which cuts the
    fits from about n²/2 to about n/step. With ``budget_seconds`` the elimination stops when time
    runs out and returns the result so far (``complete=False``).
    """
    remaining = list(range(n))
    ranking = np.ones(n, dtype=np.int64)
    scores = np.zeros(n)
    seconds_at: dict[int, float] = {}
    start = time.perf_counter()
    current = score_subset(remaining)
    fits = 1
    complete = True
    losses: dict[int, float] = {}  # each feature's removal loss in the latest round that measured it
    with progress.step(description, elimination_fits(n, stop, step)) as advance:
        while len(remaining) > stop:
            without = []
            for candidate in remaining:
                without.append(score_subset([j for j in remaining if j != candidate]))
                fits += 1
                advance(1)
                if budget_seconds is not None and time.perf_counter() - start > budget_seconds:
                    complete = False
                    break
            losses.update({feature: current - score for feature, score in zip(remaining, without)})
            if not complete:
                break
            drop = 1 if step is None else max(1, min(len(remaining) - stop, math.ceil(step * len(remaining))))
            order = sorted(range(len(remaining)), key=lambda i: (-without[i], remaining[i]))[:drop]
            dropped = [remaining[i] for i in order]
            for position, (i, feature) in enumerate(zip(order, dropped)):
                ranking[feature] = len(remaining) - position  # the least useful of this round ranks last
                scores[feature] = current - without[i]
            remaining = [j for j in remaining if j not in set(dropped)]
            if drop == 1:
                current = without[order[0]]
            else:
                current = score_subset(remaining)
                fits += 1
                advance(1)
            seconds_at[len(remaining)] = time.perf_counter() - start
        if complete:
            for candidate in remaining:
                scores[candidate] = current - score_subset([j for j in remaining if j != candidate])
                fits += 1
                advance(1)
        else:  # out of time: what is still in play is ranked by the latest loss measured for it (0 if never)
            for candidate in remaining:
                scores[candidate] = losses.get(candidate, 0.0)
    # Survivors are ordered among themselves by the score they would lose if removed.
    for position, j in enumerate(sorted(remaining, key=lambda j: (-scores[j], j)), start=1):
        ranking[j] = position
    return Elimination(ranking, scores, seconds_at, fits, complete)


AUTO_STEPS = (None, 0.02, 0.05, 0.1, 0.2, 0.5)


@register_selector("removal")
class RemovalSelector(RankingSelector):
    """Backward elimination: retrain without each candidate, drop the one whose absence hurts least.

    Each round refits a clone of ``estimator`` (default: logistic regression for classes, ridge
    regression for a regression target) once per remaining feature on the fitting split and
    scores it on the held-out ``validation_fraction`` (``scoring``: a scikit-learn scorer name,
    default the estimator's own score). On a field table with ``estimator=None`` it retrains the
    table's CTR backbone and scores validation AUC. It eliminates down to ``k`` features when
    ``k`` is given and to one otherwise (or with ``full_ranking=True``), so ``ranking_`` then
    orders every feature. Cost: about n²/2 fits — the exact reference that cheaper selectors are
    measured against.

    **Budgeted form, for wide data.** ``step`` drops that share of the remaining features per
    round (those whose removal hurt least; about n/step fits instead of n²/2); ``step="auto"``
    takes the exact form (one per round) when it fits ``budget_seconds`` and otherwise the
    smallest share that does, from a timing of two fits on every feature (a fit on m features is
    taken to cost m/n of that). A plan that cannot fit the budget
    even at a share of one half is refused before any elimination, with the estimate. A run that
    still overruns stops and keeps the result so far (``complete_`` False, the features still
    in play ranked by the last round's losses). ``step_`` is the share used, ``seconds_at_`` maps
    "features remaining" to elapsed seconds, ``n_fits_`` counts the fits.
    """

    family: ClassVar[Family] = "exact"
    tasks = frozenset(TASKS)
    _parameter_constraints: ClassVar[dict] = {
        **RankingSelector._parameter_constraints,
        "validation_fraction": [FRACTION_CONSTRAINT],
        "scoring": [str, callable, None],
        "full_ranking": ["boolean"],
        "estimator": "no_validation",
        "step": [Interval(Real, 0, 1, closed="neither"), StrOptions({"auto"}), None],
        "budget_seconds": [Interval(Real, 0, None, closed="neither"), None],
        "task": [StrOptions(set(TASKS)), None],
    }

    def __init__(
        self,
        estimator=None,
        k=None,
        validation_fraction=0.25,
        scoring=None,
        full_ranking=False,
        step=None,
        budget_seconds=None,
        task=None,
        random_state=0,
    ):
        self.estimator = estimator
        self.k = k
        self.validation_fraction = validation_fraction
        self.scoring = scoring
        self.full_ranking = full_ranking
        self.step = step
        self.budget_seconds = budget_seconds
        self.task = task
        self.random_state = random_state

    def _stop(self, n: int) -> int:
        return 1 if self.full_ranking or self.k is None else self._resolve_k(n)

    def _plan(self, n: int, stop: int, score_subset: Callable[[list[int]], float]) -> float | None:
        """The share of features dropped per round: given, or (``auto``) the smallest that fits the budget."""
        if self.step != "auto" and self.budget_seconds is None:
            return self.step
        started = time.perf_counter()
        samples = 2
        for _ in range(samples):  # fits on every column: the most expensive kind, so the estimate errs high
            score_subset(list(range(n)))
        per_fit = (time.perf_counter() - started) / samples
        candidates = AUTO_STEPS if self.step == "auto" else (self.step,)
        budget = self.budget_seconds if self.budget_seconds is not None else float("inf")
        for step in candidates:
            if elimination_cost(n, stop, step) * per_fit <= budget:
                return step
        cheapest = candidates[-1]
        need = elimination_cost(n, stop, cheapest) * per_fit
        share = "one per round" if cheapest is None else f"{cheapest:g} of the features per round"
        raise FieldError(
            f"removal cannot finish within budget_seconds={budget:g}: dropping {share} needs about "
            f"{elimination_fits(n, stop, cheapest):,} fits ≈ {need:,.0f} s ({per_fit:.3f} s per fit on {n} features); "
            "raise the budget, use step='auto', or use a cheaper selector (gbdt, permutation)"
        )

    def _eliminate(self, n: int, score_subset: Callable[[list[int]], float]) -> tuple[np.ndarray, np.ndarray]:
        stop = self._stop(n)
        self.step_ = self._plan(n, stop, score_subset)
        result = backward_eliminate(n, score_subset, stop=stop, step=self.step_, budget_seconds=self.budget_seconds)
        self.seconds_at_ = result.seconds_at
        self.n_fits_ = result.fits
        self.complete_ = result.complete
        self.extra_ = {
            **{f"seconds_at_k{k}": s for k, s in result.seconds_at.items()},
            "fits": float(result.fits),
            "step": 0.0 if self.step_ is None else float(self.step_),
            "complete": float(result.complete),
        }
        return result.scores, result.ranking

    def _rank(self, X, y):
        X_fit, X_held, y_fit, y_held = held_out_split(X, y, self.validation_fraction, self.random_state)
        return self._eliminate(X.shape[1], self._estimator_scorer(X_fit, y_fit, X_held, y_held))

    def _estimator_scorer(self, X_fit, y_fit, X_held, y_held) -> Callable[[list[int]], float]:
        from sklearn.dummy import DummyClassifier, DummyRegressor
        from sklearn.linear_model import Ridge

        regression = self.task_ == "regression"
        default = Ridge(alpha=1.0) if regression else LogisticRegression(max_iter=1000)
        template = self.estimator if self.estimator is not None else default

        def score_subset(columns: list[int]) -> float:
            if not columns:
                dummy = (DummyRegressor() if regression else DummyClassifier(strategy="prior")).fit(X_fit[:, :1], y_fit)
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
