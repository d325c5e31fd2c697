"""Gradient-boosted trees' total split gain (LightGBM)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from erasekit.features.base import FieldScores, RankingSelector, SelectionData, register_ranker


class GBDTSelector(RankingSelector):
    """Score = total gain of the splits on each column in a LightGBM classifier.

    Columns never used in a split (e.g. constant ones) score 0. ``estimator_`` is the fitted
    booster, so the model behind the scores can be inspected.
    """

    def __init__(self, k=None, n_estimators=200, learning_rate=0.05, num_leaves=31, random_state=0):
        self.k = k
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.random_state = random_state

    def _rank(self, X, y):
        from lightgbm import LGBMClassifier

        self.estimator_ = LGBMClassifier(n_estimators=self.n_estimators, learning_rate=self.learning_rate,
                                         num_leaves=self.num_leaves, importance_type="gain",
                                         random_state=self.random_state, verbose=-1, n_jobs=2,
                                         min_child_samples=min(20, max(1, len(X) // 10)))
        self.estimator_.fit(X, y)
        return np.asarray(self.estimator_.feature_importances_, dtype=np.float64), None


@dataclass(frozen=True)
class GBDTParams:
    """LightGBM settings: 200 trees, learning rate 0.05, 31 leaves (LightGBM's default leaves)."""

    n_estimators: int = 200
    learning_rate: float = 0.05
    num_leaves: int = 31


@register_ranker("gbdt", "shallow", GBDTParams)
def gbdt_fields(data: SelectionData, params: GBDTParams, seed: int) -> FieldScores:
    """LightGBM total split gain on target-encoded fields."""
    selector = GBDTSelector(None, params.n_estimators, params.learning_rate, params.num_leaves, seed)
    selector.fit(data.encoded[0], data.train.labels)
    return FieldScores(selector.scores_)
