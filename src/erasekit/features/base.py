"""The feature-selection family: scikit-learn selectors and a registry of *field rankers*.

Selectors (:class:`RankingSelector` subclasses) follow scikit-learn: ``__init__`` stores
parameters, ``fit`` validates and sets ``scores_`` (higher = more important) and
``ranking_`` (1 = best), and ``get_support`` / ``transform`` keep the top ``k`` columns.

A *field ranker* scores the fields of a CTR-style table (:class:`SelectionData`). Every
method — shallow selectors, gate-based CTR selectors, the exact removal reference — is one
file that registers a ranker with :func:`register_ranker`; the CLI, the ERASE harness and
the report then find it by name.
"""

from __future__ import annotations

import dataclasses
import typing
from abc import abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.feature_selection import SelectorMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from erasekit.data.ctr import FieldError, FieldTable
from erasekit.errors import MethodError, suggest
from erasekit.models.ctr import CTRRecipe, CTRSpec


class RankingSelector(SelectorMixin, BaseEstimator):
    """Base of the score-then-keep-top-``k`` selectors.

    ``k=None`` keeps half the features (rounded up), like scikit-learn's RFE. ``k`` larger
    than the number of features is an error, not a silent "keep all". Constant columns get
    score 0 from every subclass and so rank after informative ones (ties keep column order).
    """

    _supervised = True

    def fit(self, X, y=None):
        if self._supervised:
            X, y = validate_data(self, X, y, dtype=np.float64)
            if len(np.unique(y)) < 2:
                raise FieldError("the target has only one class; feature relevance needs at least two classes")
        else:
            X = validate_data(self, X, dtype=np.float64)
        self.k_ = self._resolve_k(X.shape[1])
        scores, ranking = self._rank(X, y)
        self.scores_ = np.asarray(scores, dtype=np.float64)
        self.ranking_ = ranking if ranking is not None else ranking_from_scores(self.scores_)
        return self

    def _resolve_k(self, n_features: int) -> int:
        k = getattr(self, "k", None)
        if k is None:
            return (n_features + 1) // 2
        if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
            raise FieldError(f"k must be a positive integer or None, got {k!r}")
        if k > n_features:
            raise FieldError(f"k={k} but the data has only {n_features} features; choose k ≤ {n_features}")
        return int(k)

    @abstractmethod
    def _rank(self, X: np.ndarray, y: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
        """(scores, ranking or None) for the validated ``X``; ``ranking`` None means "rank by score"."""

    def _get_support_mask(self) -> np.ndarray:
        check_is_fitted(self, "ranking_")
        return self.ranking_ <= self.k_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = self._supervised
        return tags


def ranking_from_scores(scores: np.ndarray) -> np.ndarray:
    """Rank 1 = highest score; ties keep the earlier column first; NaN ranks last."""
    safe = np.where(np.isfinite(scores), scores, -np.inf)
    order = np.lexsort((np.arange(len(safe)), -safe))
    ranking = np.empty(len(safe), dtype=np.int64)
    ranking[order] = np.arange(1, len(safe) + 1)
    return ranking


def standardise(X: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance per column; constant columns become 0."""
    std = X.std(axis=0)
    return (X - X.mean(axis=0)) / np.where(std > 0, std, 1.0)


# --------------------------------------------------------------------------- field ranking

@dataclass(frozen=True, eq=False)
class SelectionData:
    """What a field ranker may use: a training and a validation split of one table.

    The test split is never given to rankers. ``spec``/``recipe`` describe the CTR backbone
    the gate-based methods train. Derived encodings are computed once and shared:
    :attr:`encoded` (one column per field; categorical fields target-encoded with
    cross-fitting on the training split) and :attr:`one_hot` (for QuickSelection).
    """

    train: FieldTable
    valid: FieldTable
    spec: CTRSpec = CTRSpec()
    recipe: CTRRecipe = CTRRecipe()

    def __post_init__(self):
        if self.train.names != self.valid.names:
            raise FieldError("training and validation tables have different fields")

    @property
    def names(self) -> list[str]:
        return self.train.names

    @cached_property
    def _target_encoder(self):
        from sklearn.model_selection import KFold
        from sklearn.preprocessing import TargetEncoder

        encoder = TargetEncoder(target_type="binary", cv=KFold(5, shuffle=True, random_state=0))
        train_cat = encoder.fit_transform(self.train.codes, self.train.labels) if self.train.n_categorical else None
        return encoder, train_cat

    def _encode(self, table: FieldTable, train: bool) -> np.ndarray:
        parts = []
        if table.n_categorical:
            encoder, train_cat = self._target_encoder
            parts.append(train_cat if train else encoder.transform(table.codes))
        parts.append(table.numeric.astype(np.float64))
        return np.hstack(parts)

    @cached_property
    def encoded(self) -> tuple[np.ndarray, np.ndarray]:
        """(train, valid) matrices with one numeric column per field, in field order."""
        return self._encode(self.train, True), self._encode(self.valid, False)

    @cached_property
    def one_hot(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(train, valid, field index of each column): categorical one-hot (reserved index dropped), numeric as is."""
        train, owner = self.train.one_hot()
        return train, self.valid.one_hot()[0], owner


Family = Literal["shallow", "gate", "exact"]


@dataclass(frozen=True)
class RankerInfo:
    """A registered field ranker: name, family, parameter type, function, one-line summary."""

    name: str
    family: Family
    params_type: type
    fn: Callable[[SelectionData, Any, int], "FieldScores"]
    summary: str

    def parameter_defaults(self) -> dict[str, Any]:
        return {f.name: getattr(self.params_type(), f.name) for f in dataclasses.fields(self.params_type)}


@dataclass(frozen=True)
class FieldScores:
    """Per-field importance (higher = keep) and, when the method defines one, an explicit order (1 = best)."""

    scores: np.ndarray
    ranking: np.ndarray | None = None
    extra: dict[str, float] = field(default_factory=dict)  # method-specific numbers for the report, e.g. gate counts


_RANKERS: dict[str, RankerInfo] = {}


def register_ranker(name: str, family: Family, params_type: type):
    """Register a field ranker under ``name`` (a decorator, used in the method's own file)."""

    def decorate(fn):
        if name in _RANKERS:
            raise RuntimeError(f"field ranker '{name}' is registered twice")
        summary = (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else ""
        _RANKERS[name] = RankerInfo(name, family, params_type, fn, summary)
        return fn

    return decorate


def available_rankers() -> tuple[str, ...]:
    order = {"shallow": 0, "gate": 1, "exact": 2}
    return tuple(sorted(_RANKERS, key=lambda n: (order[_RANKERS[n].family], n)))


def ranker_info(name: str) -> RankerInfo:
    if name not in _RANKERS:
        raise MethodError(f"unknown selection method '{name}'{suggest(name, _RANKERS)}; available: {', '.join(available_rankers())}")
    return _RANKERS[name]


def parse_ranker_list(text: str) -> tuple[str, ...]:
    if text.strip() == "all":
        return available_rankers()
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not names:
        raise MethodError("no selection methods given; e.g. --methods gbdt,optfs or --methods all")
    for name in names:
        ranker_info(name)
    if len(set(names)) != len(names):
        raise MethodError(f"a method is listed twice in '{text}'")
    return names


def parse_ranker_params(assignments: typing.Sequence[str], methods: typing.Sequence[str] | None = None) -> dict[str, Any]:
    from erasekit.unlearn.base import parse_param_overrides

    return parse_param_overrides(assignments, methods, lookup=ranker_info)


def held_out_split(X: np.ndarray, y: np.ndarray, fraction: float, seed: int):
    """(X_fit, X_held, y_fit, y_held): ``fraction`` held out, stratified when every class can appear in both parts."""
    from sklearn.model_selection import train_test_split

    if not 0 < fraction < 1:
        raise FieldError(f"validation_fraction must be in (0, 1), got {fraction}")
    classes, counts = np.unique(y, return_counts=True)
    stratify = y if counts.min() >= 2 and len(X) * fraction >= len(classes) else None
    return train_test_split(X, y, test_size=fraction, stratify=stratify, random_state=seed)
