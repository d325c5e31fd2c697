"""Gradient-boosted trees' total split gain (LightGBM)."""

from __future__ import annotations

from numbers import Integral
from typing import ClassVar

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions

from erasekit.features.base import (
    POSITIVE_INT,
    POSITIVE_REAL,
    TASKS,
    RankingSelector,
    lightgbm_estimator,
    n_classes,
    register_selector,
)


@register_selector("gbdt")
class GBDTSelector(RankingSelector):
    """LightGBM total split gain per column (fields target-encoded); binary, multi-class or regression targets.

    ``n_estimators=None`` adapts to the data (:func:`~erasekit.features.base.lightgbm_estimator`:
    200 rounds at learning rate 0.05, fewer and faster rounds for many classes — each round grows
    one tree per class — and column sampling on wide tables); 31 leaves. Columns never used in a
    split (e.g. constant ones) score 0. ``estimator_`` is the fitted booster.
    """

    tasks = frozenset(TASKS)

    _parameter_constraints: ClassVar[dict] = {
        **RankingSelector._parameter_constraints,
        "n_estimators": [POSITIVE_INT, None],
        "learning_rate": [POSITIVE_REAL, None],
        "num_leaves": [Interval(Integral, 2, None, closed="left")],
        "task": [StrOptions(set(TASKS)), None],
    }

    def __init__(self, k=None, n_estimators=None, learning_rate=None, num_leaves=31, task=None, random_state=0):
        self.k = k
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.task = task
        self.random_state = random_state

    def _rank(self, X, y):
        self.estimator_ = lightgbm_estimator(
            self.task_, n_classes(y), len(X), X.shape[1], self.random_state, self.n_estimators
        ).set_params(importance_type="gain", num_leaves=self.num_leaves)
        if self.learning_rate is not None:
            self.estimator_.set_params(learning_rate=self.learning_rate)
        self.estimator_.fit(X, y)
        return np.asarray(self.estimator_.feature_importances_, dtype=np.float64), None
