"""mRMR: maximum relevance, minimum redundancy (greedy). Written from the definition; the PyPI package is GPL."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from sklearn.feature_selection import f_classif, mutual_info_classif
from sklearn.utils._param_validation import StrOptions

from erasekit.features.base import RankingSelector, register_selector

REDUNDANCY_FLOOR = 1e-3


@register_selector("mrmr")
class MRMRSelector(RankingSelector):
    """Greedy mRMR pick order, quotient form (relevance / mean |Pearson correlation| with those chosen).

    Relevance is the ANOVA F-statistic (``relevance="f"``) or mutual information (``"mi"``)
    with the target. The first pick is the most relevant column; each next pick maximises
    relevance divided by its mean absolute correlation with the picks so far (floored at
    1e-3). ``ranking_`` is the pick order over all columns; ``scores_`` is the criterion
    value at the moment each column was picked (so it is not monotone in the ranking);
    ``relevance_`` is the plain relevance. Constant columns have relevance 0. The F-statistic
    form is the FCQ variant of Zhao et al., "Maximum Relevance and Minimum Redundancy Feature
    Selection Methods for a Marketing Machine Learning Platform" (2019).
    """

    _parameter_constraints: ClassVar[dict] = {
        **RankingSelector._parameter_constraints,
        "relevance": [StrOptions({"f", "mi"})],
    }

    def __init__(self, k=None, relevance="f", random_state=0):
        self.k = k
        self.relevance = relevance
        self.random_state = random_state

    def _rank(self, X, y):
        constant = X.std(axis=0) == 0
        relevance = np.zeros(X.shape[1])
        if (~constant).any():
            if self.relevance == "f":
                with np.errstate(divide="ignore", invalid="ignore"):
                    relevance[~constant] = f_classif(X[:, ~constant], y)[0]
            else:
                relevance[~constant] = mutual_info_classif(X[:, ~constant], y, random_state=self.random_state)
        relevance = np.nan_to_num(relevance, nan=0.0, posinf=np.finfo(float).max)
        self.relevance_ = relevance
        with np.errstate(divide="ignore", invalid="ignore"):
            correlation = np.abs(np.nan_to_num(np.corrcoef(X, rowvar=False), nan=0.0)) if X.shape[1] > 1 else np.ones((1, 1))
        n = X.shape[1]
        chosen: list[int] = []
        scores = np.zeros(n)
        redundancy_sum = np.zeros(n)
        remaining = np.ones(n, dtype=bool)
        for step in range(n):
            criterion = relevance if step == 0 else relevance / np.maximum(redundancy_sum / step, REDUNDANCY_FLOOR)
            candidates = np.flatnonzero(remaining)
            best = candidates[np.argmax(criterion[candidates])]
            scores[best] = criterion[best]
            chosen.append(best)
            remaining[best] = False
            redundancy_sum += correlation[best]
        ranking = np.empty(n, dtype=np.int64)
        ranking[chosen] = np.arange(1, n + 1)
        return scores, ranking
