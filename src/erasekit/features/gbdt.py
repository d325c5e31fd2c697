"""Gradient-boosted trees' total split gain (LightGBM)."""

from __future__ import annotations

from numbers import Integral
from typing import ClassVar

import numpy as np
from sklearn.utils._param_validation import Interval

from erasekit.core.extras import require
from erasekit.features.base import POSITIVE_INT, POSITIVE_REAL, RankingSelector, register_selector


@register_selector("gbdt")
class GBDTSelector(RankingSelector):
    """LightGBM total split gain per column (fields target-encoded).

    Defaults: 200 trees, learning rate 0.05, 31 leaves (LightGBM's default leaves). Columns
    never used in a split (e.g. constant ones) score 0. ``estimator_`` is the fitted booster,
    so the model behind the scores can be inspected.
    """

    _parameter_constraints: ClassVar[dict] = {
        **RankingSelector._parameter_constraints,
        "n_estimators": [POSITIVE_INT],
        "learning_rate": [POSITIVE_REAL],
        "num_leaves": [Interval(Integral, 2, None, closed="left")],
    }

    def __init__(self, k=None, n_estimators=200, learning_rate=0.05, num_leaves=31, random_state=0):
        self.k = k
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.random_state = random_state

    def _rank(self, X, y):
        lightgbm = require("lightgbm", "the gbdt selector")
        self.estimator_ = lightgbm.LGBMClassifier(
            n_estimators=self.n_estimators,
            learning_rate=self.learning_rate,
            num_leaves=self.num_leaves,
            importance_type="gain",
            random_state=self.random_state,
            verbose=-1,
            n_jobs=2,
            min_child_samples=min(20, max(1, len(X) // 10)),
        )
        self.estimator_.fit(X, y)
        return np.asarray(self.estimator_.feature_importances_, dtype=np.float64), None
