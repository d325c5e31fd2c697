"""Permutation importance of any estimator, measured on held-out rows (never the training rows)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from sklearn.base import clone
from sklearn.inspection import permutation_importance
from sklearn.utils._param_validation import StrOptions

from erasekit.features.base import (
    FRACTION_CONSTRAINT,
    POSITIVE_INT,
    TASKS,
    FieldScores,
    RankingSelector,
    SelectionData,
    default_scoring,
    held_out_split,
    infer_task,
    lightgbm_estimator,
    n_classes,
    register_selector,
)


@register_selector("permutation")
class PermutationSelector(RankingSelector):
    """Permutation importance: the drop in held-out score when one column is shuffled (mean of ``n_repeats``).

    ``fit`` holds out ``validation_fraction`` of the rows (stratified), fits a clone of
    ``estimator`` on the rest and permutes columns of the held-out part only — importance on
    training rows rewards memorised noise (ERASE's reference code does that; we do not). On a
    field table the held-out rows are its validation split. ``estimator=None`` is LightGBM with
    settings that follow the data (see :func:`~erasekit.features.base.lightgbm_estimator`);
    ``scoring=None`` is ROC AUC for a binary target, accuracy for multi-class, R² for
    regression. ``importances_std_`` is the spread over repeats.
    """

    tasks = frozenset(TASKS)

    _parameter_constraints: ClassVar[dict] = {
        **RankingSelector._parameter_constraints,
        "validation_fraction": [FRACTION_CONSTRAINT],
        "n_repeats": [POSITIVE_INT],
        "scoring": [str, callable, None],
        "estimator": "no_validation",
        "task": [StrOptions(set(TASKS)), None],
    }

    def __init__(self, estimator=None, k=None, validation_fraction=0.25, n_repeats=5, scoring=None, task=None, random_state=0):
        self.estimator = estimator
        self.k = k
        self.validation_fraction = validation_fraction
        self.n_repeats = n_repeats
        self.scoring = scoring
        self.task = task
        self.random_state = random_state

    def _make_estimator(self, task: str, X, y):
        if self.estimator is not None:
            return clone(self.estimator)
        return lightgbm_estimator(task, n_classes(y), len(X), X.shape[1], self.random_state)

    def _importances(self, X_fit, y_fit, X_held, y_held) -> np.ndarray:
        task = getattr(self, "task_", None) or self.task or infer_task(y_fit)
        self.estimator_ = self._make_estimator(task, X_fit, y_fit).fit(X_fit, y_fit)
        scoring = self.scoring if self.scoring is not None else default_scoring(task)
        result = permutation_importance(
            self.estimator_, X_held, y_held, scoring=scoring, n_repeats=self.n_repeats, random_state=self.random_state
        )
        self.importances_std_ = result.importances_std
        return result.importances_mean

    def _rank(self, X, y):
        X_fit, X_held, y_fit, y_held = held_out_split(X, y, self.validation_fraction, self.random_state)
        return self._importances(X_fit, y_fit, X_held, y_held), None

    def rank_fields(self, data: SelectionData) -> FieldScores:
        self.check_params()
        train, valid = data.encoded
        self.n_features_in_ = train.shape[1]
        self.k_ = self._resolve_k(train.shape[1])
        self.extra_ = {}
        self.task_ = "binary"  # a CTR field table has click labels
        self._set_result(self._importances(train, data.train.labels, valid, data.valid.labels), None)
        return FieldScores(self.scores_)
