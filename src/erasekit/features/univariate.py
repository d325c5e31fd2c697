"""Univariate filter: each column ranked by its own relevance to the target, ignoring the others."""

from __future__ import annotations

from typing import ClassVar

from sklearn.utils._param_validation import StrOptions

from erasekit.features.base import TASKS, RankingSelector, register_selector, univariate_relevance


@register_selector("univariate")
class UnivariateSelector(RankingSelector):
    """Rank columns by their own relevance: the F-statistic (``relevance="f"``) or mutual information (``"mi"``).

    The relevance half of mRMR without its redundancy penalty (Zhao et al., 2019): the cheapest
    baseline, and the one to use when every informative column should be kept, copies included
    (mRMR deliberately skips a column that repeats an earlier pick). The F-statistic is ANOVA for
    classes and the univariate linear-regression F for a regression target; it sees only linear,
    one-column effects — a column that matters only together with another (XOR-like) scores 0,
    where mutual information or the tree methods (gbdt, random_forest) still find it. Mutual
    information is a nearest-neighbour estimate and needs more rows than F: with a few hundred
    rows and weak effects it is mostly noise.
    ``scores_`` is the relevance; constant columns score 0.
    """

    tasks = frozenset(TASKS)

    _parameter_constraints: ClassVar[dict] = {
        **RankingSelector._parameter_constraints,
        "relevance": [StrOptions({"f", "mi"})],
        "task": [StrOptions(set(TASKS)), None],
    }

    def __init__(self, k=None, relevance="f", task=None, random_state=0):
        self.k = k
        self.relevance = relevance
        self.task = task
        self.random_state = random_state

    def _rank(self, X, y):
        return univariate_relevance(X, y, self.task_, self.relevance, self.random_state), None
