"""L1-penalised logistic regression: features ordered by when they enter the regularisation path."""

from __future__ import annotations

from numbers import Real
from typing import ClassVar

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.svm import l1_min_c
from sklearn.utils._param_validation import Interval, StrOptions

from erasekit.core import progress
from erasekit.features.base import POSITIVE_INT, TASKS, RankingSelector, ranking_from_scores, register_selector, standardise


@register_selector("l1")
class L1Selector(RankingSelector):
    """Order of entry into the L1 regularisation path (logistic, multinomial or lasso), on standardised columns.

    The penalty is relaxed along ``n_path`` (20) values from the strongest penalty that leaves
    a non-zero coefficient down to ``path_span`` (10⁴) times weaker; ``scores_`` is the share
    of the path on which a column's coefficient is non-zero (earlier entry = more important),
    with ties broken by ``|coef_|`` at the weakest penalty. Binary targets use L1-logistic
    regression; multi-class targets the multinomial L1-logistic model, where a column enters
    when any class's coefficient does; regression targets the lasso path (coordinate descent).
    ``coef_`` is the final coefficient magnitude (summed over classes). A linear path finds
    columns that matter linearly: for interactions (XOR-like targets) use gbdt or permutation.
    """

    tasks = frozenset(TASKS)

    _parameter_constraints: ClassVar[dict] = {
        **RankingSelector._parameter_constraints,
        "n_path": [POSITIVE_INT],
        "path_span": [Interval(Real, 1, None, closed="left")],
        "task": [StrOptions(set(TASKS)), None],
    }

    def __init__(self, k=None, n_path=20, path_span=1e4, task=None, random_state=0):
        self.k = k
        self.n_path = n_path
        self.path_span = path_span
        self.task = task
        self.random_state = random_state

    def _rank(self, X, y):
        Z = standardise(X)
        informative = Z.std(axis=0) > 0
        active = np.zeros(X.shape[1])
        magnitude = np.zeros(X.shape[1])
        if informative.any() and self.task_ == "regression":
            from sklearn.linear_model import lasso_path

            target = (y - y.mean()) / y.std()
            alpha_max = np.abs(Z[:, informative].T @ target).max() / len(y)
            alphas = alpha_max * np.logspace(0, -np.log10(self.path_span), self.n_path)
            _, coefs, _ = lasso_path(Z[:, informative], target, alphas=alphas)
            active[informative] = (np.abs(coefs) > 1e-10).sum(axis=1)
            magnitude[informative] = np.abs(coefs[:, -1])
        elif informative.any():
            c_min = l1_min_c(Z[:, informative], y, loss="log")
            model = LogisticRegression(
                l1_ratio=1.0, solver="saga", max_iter=2000, tol=1e-3, warm_start=True, random_state=self.random_state
            )
            with progress.step("l1 path", self.n_path) as advance:
                for C in c_min * np.logspace(0, np.log10(self.path_span), self.n_path):
                    model.set_params(C=C)
                    model.fit(Z[:, informative], y)
                    nonzero = (np.abs(model.coef_) > 1e-10).any(axis=0)
                    active[informative] += nonzero
                    advance(1)
            magnitude[informative] = np.abs(model.coef_).sum(axis=0)
        self.coef_ = magnitude
        scores = active / self.n_path
        tie_break = magnitude / (magnitude.max() + 1e-12) / (self.n_path + 1)
        return scores, ranking_from_scores(scores + tie_break)
