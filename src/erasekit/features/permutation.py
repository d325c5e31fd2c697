"""Permutation importance of any estimator, measured on held-out rows (never the training rows)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.base import clone
from sklearn.inspection import permutation_importance
from sklearn.linear_model import LogisticRegression

from erasekit.features.base import FieldScores, RankingSelector, SelectionData, held_out_split, register_ranker


class PermutationSelector(RankingSelector):
    """Score = drop in held-out score when one column is shuffled (mean over ``n_repeats``).

    ``fit`` holds out ``validation_fraction`` of the rows (stratified), fits a clone of
    ``estimator`` (default: logistic regression) on the rest and permutes columns of the
    held-out part only — importance on training rows rewards memorised noise (ERASE's
    reference code does that; we do not). ``importances_std_`` is the spread over repeats.
    """

    def __init__(self, estimator=None, k=None, validation_fraction=0.25, n_repeats=5, scoring=None, random_state=0):
        self.estimator = estimator
        self.k = k
        self.validation_fraction = validation_fraction
        self.n_repeats = n_repeats
        self.scoring = scoring
        self.random_state = random_state

    def _rank(self, X, y):
        X_fit, X_held, y_fit, y_held = held_out_split(X, y, self.validation_fraction, self.random_state)
        estimator = clone(self.estimator) if self.estimator is not None else LogisticRegression(max_iter=1000)
        self.estimator_ = estimator.fit(X_fit, y_fit)
        result = permutation_importance(self.estimator_, X_held, y_held, scoring=self.scoring,
                                        n_repeats=self.n_repeats, random_state=self.random_state)
        self.importances_std_ = result.importances_std
        return result.importances_mean, None


@dataclass(frozen=True)
class PermutationParams:
    """``n_repeats`` shuffles per field of a LightGBM model's validation AUC (scikit-learn's default is 5)."""

    n_repeats: int = 5
    n_estimators: int = 200


@register_ranker("permutation", "shallow", PermutationParams)
def permutation_fields(data: SelectionData, params: PermutationParams, seed: int) -> FieldScores:
    """Permutation importance (validation AUC drop) of a LightGBM model on target-encoded fields."""
    from lightgbm import LGBMClassifier

    train, valid = data.encoded
    model = LGBMClassifier(n_estimators=params.n_estimators, learning_rate=0.05, random_state=seed, verbose=-1, n_jobs=2)
    model.fit(train, data.train.labels)
    result = permutation_importance(model, valid, data.valid.labels, scoring="roc_auc", n_repeats=params.n_repeats,
                                    random_state=seed)
    return FieldScores(result.importances_mean)
