"""L1-penalised logistic regression: features ordered by when they enter the regularisation path."""

from __future__ import annotations

from numbers import Real
from typing import ClassVar

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.svm import l1_min_c
from sklearn.utils._param_validation import Interval

from erasekit.features.base import POSITIVE_INT, RankingSelector, ranking_from_scores, register_selector, standardise


@register_selector("l1")
class L1Selector(RankingSelector):
    """Order of entry into the L1-logistic regularisation path, on standardised columns.

    The penalty is relaxed along ``n_path`` (20) values of C from the smallest C that admits a
    non-zero coefficient up to ``path_span`` (10⁴) times it; ``scores_`` is the share of the
    path on which a column's coefficient is non-zero (earlier entry = more important), with
    ties broken by ``|coef_|`` at the weakest penalty. ``coef_`` is that final coefficient
    vector (summed in absolute value over classes for multi-class targets).
    """

    _parameter_constraints: ClassVar[dict] = {
        **RankingSelector._parameter_constraints,
        "n_path": [POSITIVE_INT],
        "path_span": [Interval(Real, 1, None, closed="left")],
    }

    def __init__(self, k=None, n_path=20, path_span=1e4, random_state=0):
        self.k = k
        self.n_path = n_path
        self.path_span = path_span
        self.random_state = random_state

    def _rank(self, X, y):
        Z = standardise(X)
        informative = Z.std(axis=0) > 0
        active = np.zeros(X.shape[1])
        magnitude = np.zeros(X.shape[1])
        if informative.any():
            c_min = l1_min_c(Z[:, informative], y, loss="log")
            model = LogisticRegression(
                l1_ratio=1.0, solver="saga", max_iter=2000, tol=1e-3, warm_start=True, random_state=self.random_state
            )
            for C in c_min * np.logspace(0, np.log10(self.path_span), self.n_path):
                model.set_params(C=C)
                model.fit(Z[:, informative], y)
                nonzero = (np.abs(model.coef_) > 1e-10).any(axis=0)
                active[informative] += nonzero
            magnitude[informative] = np.abs(model.coef_).sum(axis=0)
        self.coef_ = magnitude
        scores = active / self.n_path
        tie_break = magnitude / (magnitude.max() + 1e-12) / (self.n_path + 1)
        return scores, ranking_from_scores(scores + tie_break)
