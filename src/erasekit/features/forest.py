"""Random-forest impurity importance (mean decrease in impurity)."""

from __future__ import annotations

from numbers import Integral, Real
from typing import ClassVar

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions

from erasekit.core import progress
from erasekit.features.base import POSITIVE_INT, TASKS, RankingSelector, register_selector

TREES_PER_STEP = 25  # trees added between progress updates (warm start)


@register_selector("random_forest")
class RandomForestSelector(RankingSelector):
    """Mean decrease in impurity of a random forest (scikit-learn), for binary, multi-class or regression targets.

    Each split considers a random ``max_features`` share of the columns ("sqrt" by default), so
    columns that carry the same information take turns and all score — unlike boosting, which
    keeps reusing the first one it found, and L1/mRMR, which keep one of a group on purpose.
    Impurity importance is computed on the training rows and favours continuous or many-valued
    columns over few-valued ones; for a held-out measure use ``permutation``. Trees are grown in
    steps of 25 with a progress bar. ``estimator_`` is the fitted forest.
    """

    tasks = frozenset(TASKS)

    _parameter_constraints: ClassVar[dict] = {
        **RankingSelector._parameter_constraints,
        "n_estimators": [POSITIVE_INT],
        "max_features": [StrOptions({"sqrt", "log2"}), Interval(Real, 0, 1, closed="right"), None],
        "min_samples_leaf": [Interval(Integral, 1, None, closed="left")],
        "task": [StrOptions(set(TASKS)), None],
    }

    def __init__(self, k=None, n_estimators=300, max_features="sqrt", min_samples_leaf=1, task=None, random_state=0):
        self.k = k
        self.n_estimators = n_estimators
        self.max_features = max_features
        self.min_samples_leaf = min_samples_leaf
        self.task = task
        self.random_state = random_state

    def _rank(self, X, y):
        from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

        forest_type = RandomForestRegressor if self.task_ == "regression" else RandomForestClassifier
        # max_features=None means every column (scikit-learn's 1.0)
        forest = forest_type(
            n_estimators=0, max_features=1.0 if self.max_features is None else self.max_features,
            min_samples_leaf=self.min_samples_leaf, warm_start=True, n_jobs=1, random_state=self.random_state,
        )  # fmt: skip
        with progress.step("random forest", self.n_estimators) as advance:
            while forest.n_estimators < self.n_estimators:
                step = min(TREES_PER_STEP, self.n_estimators - forest.n_estimators)
                forest.set_params(n_estimators=forest.n_estimators + step).fit(X, y)
                advance(step)
        self.estimator_ = forest
        if not any(tree.tree_.node_count > 1 for tree in forest.estimators_):
            return np.zeros(X.shape[1]), None  # no split anywhere: scikit-learn would divide 0 by 0
        return np.asarray(forest.feature_importances_, dtype=np.float64), None
