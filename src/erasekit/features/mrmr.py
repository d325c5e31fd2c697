"""mRMR: maximum relevance, minimum redundancy (greedy). Written from the definition; the PyPI package is GPL."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from sklearn.utils._param_validation import StrOptions

from erasekit.features.base import TASKS, RankingSelector, register_selector, univariate_relevance

REDUNDANCY_FLOOR = 1e-3


@register_selector("mrmr")
class MRMRSelector(RankingSelector):
    """Greedy mRMR pick order: relevance to the target, penalised by mean |Pearson correlation| with the picks so far.

    Relevance is the F-statistic (``relevance="f"``: ANOVA for classes, the univariate linear
    regression F for a regression target) or mutual information (``"mi"``), both suited to
    continuous columns. ``scheme="difference"`` (default; the FCD variant) maximises relevance on the
    correlation scale (the correlation ratio η from F, or MI / its maximum) − mean |correlation|;
    ``scheme="quotient"`` (FCQ) maximises relevance /
    mean |correlation| floored at 1e-3. The quotient rewards columns uncorrelated with the picks
    whatever their relevance, so on wide tables it fills up with noise — worse than a random choice
    on a 617-column table — which is why the difference is the default. The first pick is the most
    relevant column. ``ranking_`` is the pick order over all columns; ``scores_`` is the criterion
    value at the moment each column was picked (not monotone in the ranking); ``relevance_`` is the
    plain relevance. Constant columns have relevance 0. Both forms are in Zhao et al., "Maximum
    Relevance and Minimum Redundancy Feature Selection Methods for a Marketing Machine Learning
    Platform" (2019).
    """

    tasks = frozenset(TASKS)

    _parameter_constraints: ClassVar[dict] = {
        **RankingSelector._parameter_constraints,
        "relevance": [StrOptions({"f", "mi"})],
        "scheme": [StrOptions({"difference", "quotient"})],
        "task": [StrOptions(set(TASKS)), None],
    }

    def __init__(self, k=None, relevance="f", scheme="difference", task=None, random_state=0):
        self.k = k
        self.relevance = relevance
        self.scheme = scheme
        self.task = task
        self.random_state = random_state

    def _rank(self, X, y):
        relevance = univariate_relevance(X, y, self.task_, self.relevance, self.random_state)
        self.relevance_ = relevance
        with np.errstate(divide="ignore", invalid="ignore"):
            correlation = np.abs(np.nan_to_num(np.corrcoef(X, rowvar=False), nan=0.0)) if X.shape[1] > 1 else np.ones((1, 1))
        n = X.shape[1]
        chosen: list[int] = []
        scores = np.zeros(n)
        redundancy_sum = np.zeros(n)
        remaining = np.ones(n, dtype=bool)
        for step in range(n):
            if step == 0:
                criterion = relevance
            elif self.scheme == "difference":
                criterion = self._on_correlation_scale(relevance, X, y) - redundancy_sum / step
            else:
                criterion = relevance / np.maximum(redundancy_sum / step, REDUNDANCY_FLOOR)
            candidates = np.flatnonzero(remaining)
            best = candidates[np.argmax(criterion[candidates])]
            scores[best] = criterion[best]
            chosen.append(best)
            remaining[best] = False
            redundancy_sum += correlation[best]
        ranking = np.empty(n, dtype=np.int64)
        ranking[chosen] = np.arange(1, n + 1)
        return scores, ranking

    def _on_correlation_scale(self, relevance: np.ndarray, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Relevance on the scale of the redundancy term, so the difference weighs like with like.

        F-statistics become correlations: η = √(F(C−1) / (F(C−1) + n − C)) for C classes (the
        correlation ratio), |r| = √(F / (F + n − 2)) for a regression target. Mutual information is
        divided by its maximum.
        """
        if self.relevance != "f":
            return relevance / max(relevance.max(), np.finfo(float).tiny)
        n = len(y)
        groups = 2 if self.task_ == "regression" else len(np.unique(y))
        between = relevance * (groups - 1)
        return np.sqrt(between / np.maximum(between + n - groups, np.finfo(float).tiny))
