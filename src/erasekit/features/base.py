"""The feature-selection contract: every method is one scikit-learn selector, registered by name.

A selector (:class:`RankingSelector` subclass) follows scikit-learn: ``__init__`` stores the
method's parameters (declared once, with their constraints in ``_parameter_constraints``),
``fit(X, y)`` validates and sets ``scores_`` (higher = more important) and ``ranking_``
(1 = best), and ``get_support`` / ``transform`` keep the top ``k`` columns.

The same object ranks the *fields* of a prepared CTR-style table with
:meth:`RankingSelector.rank_fields` — a thin view that hands the method the input it needs
(target-encoded fields by default, one-hot columns for QuickSelection, the field tables and
the CTR backbone for the gate-based and exact methods). The CLI, the ERASE pipeline and the
report find each method through :data:`SELECTORS`.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from numbers import Integral, Real
from typing import Any, ClassVar, Literal

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.feature_selection import SelectorMixin
from sklearn.utils._param_validation import Interval, InvalidParameterError, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from erasekit.core.errors import FieldError, MethodError
from erasekit.core.extras import require
from erasekit.core.params import check_number
from erasekit.core.registry import Registry
from erasekit.core.resources import measure
from erasekit.data.ctr import FieldTable, table_from_matrix
from erasekit.data.plain_tables import TASKS as TASKS  # re-exported: the selectors declare their tasks with it
from erasekit.data.plain_tables import infer_task
from erasekit.models.ctr import CTRRecipe, CTRSpec

Family = Literal["shallow", "gate", "exact"]
FAMILY_ORDER = {"shallow": 0, "gate": 1, "exact": 2}
Task = Literal["binary", "multiclass", "regression"]
CLASSIFICATION = frozenset({"binary", "multiclass"})

# Set by the selection command and pipeline themselves (from --seed), not by --param.
CONTEXT_PARAMETERS = ("random_state",)


# --------------------------------------------------------------------------- what a ranker may use


@dataclass(frozen=True, eq=False)
class SelectionData:
    """What a field ranker may use: a training and a validation split of one table.

    The test split is never given to rankers. ``spec``/``recipe`` describe the CTR backbone
    the gate-based and exact methods train. Derived encodings are computed once and shared:
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

    @classmethod
    def from_matrix(
        cls,
        X: np.ndarray,
        y: np.ndarray,
        categorical: Sequence[int],
        validation_fraction: float,
        seed: int,
        spec: CTRSpec | None = None,
        recipe: CTRRecipe | None = None,
    ) -> SelectionData:
        """Split a numeric matrix (``categorical`` columns hold integer codes) into field tables; ``y`` must be binary."""
        classes, labels = np.unique(y, return_inverse=True)
        if len(classes) != 2:
            raise FieldError(f"CTR-backbone selectors need a binary target, found {len(classes)} classes")
        bad = [j for j in categorical if not 0 <= int(j) < X.shape[1]]
        if bad:
            raise FieldError(f"categorical column index {bad[0]} is out of range for {X.shape[1]} columns")
        table = table_from_matrix(X, labels, categorical)
        fit_rows, held_rows, _, _ = held_out_split(np.arange(len(X)), labels, validation_fraction, seed)
        return cls(table.rows(np.sort(fit_rows)), table.rows(np.sort(held_rows)), spec or CTRSpec(), recipe or CTRRecipe())

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


@dataclass(frozen=True)
class FieldScores:
    """Per-field importance (higher = keep) and, when the method defines one, an explicit order (1 = best)."""

    scores: np.ndarray
    ranking: np.ndarray | None = None
    extra: dict[str, float] = field(default_factory=dict)  # method-specific numbers for the report, e.g. gate counts


# --------------------------------------------------------------------------- the selector contract


class RankingSelector(SelectorMixin, BaseEstimator):
    """Base of every selection method: score the columns, keep the top ``k``.

    ``k=None`` keeps half the features (rounded up), like scikit-learn's RFE. ``k`` larger
    than the number of features is an error, not a silent "keep all". Constant columns get
    score 0 from every subclass and so rank after informative ones (ties keep column order).
    Every numeric parameter must be finite and inside the range its class declares.

    ``tasks`` are the targets a method handles (binary, multiclass, regression); fitting
    another kind is a one-line error. Selectors with a ``task`` parameter take it as given
    (``None``: inferred from ``y`` by :func:`~erasekit.data.plain_tables.infer_task` — text or at
    most 50 integer values are classes, other numbers a regression); ``task_`` is what was used.
    """

    family: ClassVar[Family] = "shallow"
    tasks: ClassVar[frozenset[str]] = CLASSIFICATION
    _supervised: ClassVar[bool] = True
    _parameter_constraints: ClassVar[dict] = {"k": [Interval(Integral, 1, None, closed="left"), None]}

    def fit(self, X, y=None):
        self.check_params()
        if self._supervised:
            X, y = validate_data(self, X, y, dtype=np.float64, y_numeric=getattr(self, "task", None) == "regression")
            self.task_ = getattr(self, "task", None) or infer_task(y)
            if self.task_ not in self.tasks:
                raise FieldError(
                    f"{type(self).__name__} cannot rank features for a {self.task_} target; "
                    f"methods that can: {', '.join(selectors_for(self.task_))}"
                )
            check_target(y, self.task_)
        else:
            X = validate_data(self, X, dtype=np.float64)
            self.task_ = None
        self.k_ = self._resolve_k(X.shape[1])
        self.extra_: dict[str, float] = {}
        scores, ranking = self._rank(X, y)
        self._set_result(scores, ranking)
        return self

    def check_params(self) -> None:
        """Validate the parameters against ``_parameter_constraints``; numbers must be finite."""
        try:
            self._validate_params()
        except InvalidParameterError as exc:
            raise FieldError(str(exc)) from None
        for name, value in self.get_params(deep=False).items():
            check_number(value, f"{type(self).__name__}.{name}", error=FieldError)

    def _resolve_k(self, n_features: int) -> int:
        k = self.k
        if k is None:
            return (n_features + 1) // 2
        if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
            raise FieldError(f"k must be a positive integer or None, got {k!r}")
        if k > n_features:
            raise FieldError(f"k={k} but the data has only {n_features} features; choose k ≤ {n_features}")
        return int(k)

    def _set_result(self, scores, ranking) -> None:
        self.scores_ = np.asarray(scores, dtype=np.float64)
        self.ranking_ = np.asarray(ranking) if ranking is not None else ranking_from_scores(self.scores_)

    @abstractmethod
    def _rank(self, X: np.ndarray, y: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
        """(scores, ranking or None) for the validated ``X``; ``ranking`` None means "rank by score"."""

    # ---- the field-table view

    def rank_fields(self, data: SelectionData) -> FieldScores:
        """Rank the fields of a prepared table; by default the method sees one target-encoded column per field."""
        self.fit(data.encoded[0], data.train.labels)
        return FieldScores(self.scores_, self.ranking_, dict(self.extra_))

    def _get_support_mask(self) -> np.ndarray:
        check_is_fitted(self, "ranking_")
        return self.ranking_ <= self.k_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = self._supervised
        return tags


def check_target(y, task: str) -> None:
    """One-line errors for targets nothing can be learned from."""
    values = np.asarray(y)
    if task == "regression":
        numbers = values.astype(np.float64)
        if not np.isfinite(numbers).all():
            raise FieldError("the regression target has missing or infinite values; drop or impute those rows")
        if numbers.std() == 0:
            raise FieldError("the target is constant; feature relevance needs a target that varies")
        return
    classes = np.unique(values)
    if len(classes) < 2:
        raise FieldError("the target has only one class; feature relevance needs at least two classes")


def n_classes(y) -> int:
    return len(np.unique(np.asarray(y)))


def lightgbm_estimator(task: str, classes: int, n_rows: int, n_features: int, seed: int, n_estimators: int | None = None):
    """A LightGBM model whose settings follow the data.

    Multi-class boosting grows one tree per class per round, so the rounds shrink with the class
    count (``200·2/C``, at least 30); wide tables sample half the columns per tree and use 63 bins;
    leaves need at least 20 rows or a tenth of the data. One thread (LightGBM's OpenMP workers
    spin-wait between small fits, which starves the other core).
    """
    lightgbm = require("lightgbm", "LightGBM-based selection")
    rounds = n_estimators if n_estimators is not None else (200 if task != "multiclass" else max(30, 400 // max(classes, 2)))
    wide = n_features > 200
    settings = dict(
        n_estimators=rounds,
        learning_rate=0.05 if rounds >= 100 else 0.1,
        num_leaves=31,
        random_state=seed,
        verbose=-1,
        n_jobs=1,
        min_child_samples=min(20, max(1, n_rows // 10)),
        colsample_bytree=0.5 if wide else 1.0,
        max_bin=63 if wide else 255,
    )
    if task == "regression":
        return lightgbm.LGBMRegressor(**settings)
    return lightgbm.LGBMClassifier(**settings)


def univariate_relevance(X: np.ndarray, y: np.ndarray, task: str, estimator: str, seed: int) -> np.ndarray:
    """Each column's own relevance to the target: the F-statistic (``"f"``: ANOVA for classes, the
    univariate linear-regression F for a regression target) or mutual information (``"mi"``).
    Constant columns get 0; an infinite F (a column that separates the classes exactly) the
    largest float."""
    from sklearn.feature_selection import f_classif, f_regression, mutual_info_classif, mutual_info_regression

    constant = X.std(axis=0) == 0
    relevance = np.zeros(X.shape[1])
    if (~constant).any():
        regression = task == "regression"
        if estimator == "f":
            with np.errstate(divide="ignore", invalid="ignore"):
                relevance[~constant] = (f_regression if regression else f_classif)(X[:, ~constant], y)[0]
        else:
            estimate = mutual_info_regression if regression else mutual_info_classif
            relevance[~constant] = estimate(X[:, ~constant], y, random_state=seed)
    return np.nan_to_num(relevance, nan=0.0, posinf=np.finfo(float).max)


def default_scoring(task: str) -> str:
    """ROC AUC for binary targets, accuracy for multi-class, R² for regression."""
    return {"binary": "roc_auc", "multiclass": "accuracy", "regression": "r2"}[task]


def selectors_for(task: str) -> list[str]:
    """The registered methods that handle ``task``."""
    return [info.name for info in SELECTORS if task in info.selector_type.tasks]


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


def held_out_split(X: np.ndarray, y: np.ndarray, fraction: float, seed: int):
    """(X_fit, X_held, y_fit, y_held): ``fraction`` held out, stratified when every class can appear in both parts."""
    from sklearn.model_selection import train_test_split

    if not 0 < fraction < 1:
        raise FieldError(f"validation_fraction must be in (0, 1), got {fraction}")
    classes, counts = np.unique(y, return_counts=True)
    regression = infer_task(y) == "regression"
    stratify = y if not regression and counts.min() >= 2 and len(X) * fraction >= len(classes) else None
    return train_test_split(X, y, test_size=fraction, stratify=stratify, random_state=seed)


FRACTION_CONSTRAINT = Interval(Real, 0, 1, closed="neither")
POSITIVE_INT = Interval(Integral, 1, None, closed="left")
POSITIVE_REAL = Interval(Real, 0, None, closed="neither")


# --------------------------------------------------------------------------- the registry


@dataclass(frozen=True)
class SelectorInfo:
    """A registered selection method: its name, selector class and one-line summary."""

    name: str
    selector_type: type[RankingSelector]
    summary: str

    @property
    def family(self) -> Family:
        return self.selector_type.family

    def parameter_defaults(self) -> dict[str, Any]:
        """The method's own parameters (not ``random_state``) with their defaults."""
        defaults = self.selector_type().get_params(deep=False)
        return {name: value for name, value in defaults.items() if name not in CONTEXT_PARAMETERS}

    def parameter_types(self) -> dict[str, Any]:
        """Parameters that ``--param`` can set: numbers, strings and booleans (from the default or the constraints)."""
        constraints = self.selector_type._parameter_constraints
        types: dict[str, Any] = {}
        for name, default in self.parameter_defaults().items():
            allowed = constraints.get(name, ())
            options = next((c for c in allowed if isinstance(c, StrOptions)), None)
            interval = next((c for c in allowed if isinstance(c, Interval)), None)
            if options is not None:
                types[name] = Literal[tuple(sorted(options.options))]
            elif isinstance(default, (bool, int, float, str)):
                types[name] = type(default)
            elif interval is not None:
                number = int if interval.type is Integral else float
                types[name] = number | None if None in allowed else number
        return types

    def make_params(self, values: dict[str, Any]) -> RankingSelector:
        """A selector with ``values`` overriding its defaults, validated now (before any work)."""
        selector = self.selector_type(**values)
        selector.check_params()
        return selector


SELECTORS: Registry[SelectorInfo] = Registry(
    "selection method", order=lambda info: FAMILY_ORDER[info.family], example="gbdt,optfs"
)


def register_selector(name: str):
    """Register a selector class under ``name`` (a class decorator in the method's own file)."""

    def decorate(selector_type: type[RankingSelector]) -> type[RankingSelector]:
        summary = (selector_type.__doc__ or "").strip().splitlines()[0] if selector_type.__doc__ else ""
        SELECTORS.add(SelectorInfo(name, selector_type, summary))
        return selector_type

    return decorate


def available_selectors() -> tuple[str, ...]:
    """Every registered method: shallow, then gate-based, then exact; alphabetical within a family."""
    return SELECTORS.names()


def selector_info(name: str) -> SelectorInfo:
    return SELECTORS.get(name)


def parse_selector_list(text: str) -> tuple[str, ...]:
    return SELECTORS.parse_list(text)


def parse_selector_params(assignments: Sequence[str], methods: Sequence[str] | None = None) -> dict[str, RankingSelector]:
    """``["optfs.level=value", …]`` → configured selectors keyed by method name."""
    return SELECTORS.parse_params(assignments, methods)


# --------------------------------------------------------------------------- running one method on a table


@dataclass(frozen=True)
class FieldSelection:
    """One method's choice: the top-``k`` fields kept, the rest removed, a score per field (higher = more important)."""

    method: str
    params: dict[str, Any]
    k: int
    kept: tuple[str, ...]
    removed: tuple[str, ...]
    scores: dict[str, float]
    ranking: tuple[str, ...]  # every field, most important first
    seconds: float
    peak_memory_mb: float
    seed: int
    extra: dict[str, float] = field(default_factory=dict)


def reportable_params(params: dict[str, Any]) -> dict[str, Any]:
    """Parameters as JSON-ready values: numbers, strings, lists of them; anything else (an estimator) as its repr."""

    def plain(value: Any) -> Any:
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        if isinstance(value, (tuple, list)) and all(isinstance(v, (bool, int, float, str)) for v in value):
            return list(value)
        return repr(value)

    return {name: plain(value) for name, value in params.items()}


def rank_fields(data: SelectionData, method: str, selector: RankingSelector | None = None, seed: int = 0) -> FieldSelection:
    """Run the registered method ``method`` on ``data`` (optionally a configured ``selector``); ``k`` = all fields."""
    info = selector_info(method)
    if selector is None:
        selector = info.selector_type()
    elif not isinstance(selector, info.selector_type):
        raise MethodError(f"method '{method}' takes a {info.selector_type.__name__}, got {type(selector).__name__}")
    selector = clone(selector).set_params(random_state=seed)
    with measure() as cost:
        result = selector.rank_fields(data)
    scores = np.asarray(result.scores, dtype=np.float64)
    if scores.shape != (len(data.names),) or not np.isfinite(scores).all():
        raise FieldError(
            f"method '{method}' returned unusable scores (shape {scores.shape}, finite: {np.isfinite(scores).all()})"
        )
    order = (
        np.argsort(result.ranking, kind="stable") if result.ranking is not None else np.lexsort((np.arange(len(scores)), -scores))
    )
    ranking = tuple(data.names[i] for i in order)
    params = {k: v for k, v in selector.get_params(deep=False).items() if k not in CONTEXT_PARAMETERS}
    return FieldSelection(
        method,
        reportable_params(params),
        len(ranking),
        ranking,
        (),
        dict(zip(data.names, scores.tolist())),
        ranking,
        cost.seconds,
        cost.peak_memory_mb,
        seed,
        dict(result.extra),
    )


def select_fields(
    data: SelectionData, method: str, k: int, selector: RankingSelector | None = None, seed: int = 0
) -> FieldSelection:
    """Rank with ``method`` and keep the top ``k`` fields."""
    n = len(data.names)
    if not isinstance(k, (int, np.integer)) or k < 1 or k > n:
        raise FieldError(f"k={k} is out of range: the table has {n} fields; choose 1 ≤ k ≤ {n}")
    ranked = rank_fields(data, method, selector, seed)
    return FieldSelection(
        ranked.method,
        ranked.params,
        int(k),
        ranked.ranking[:k],
        ranked.ranking[k:],
        ranked.scores,
        ranked.ranking,
        ranked.seconds,
        ranked.peak_memory_mb,
        seed,
        ranked.extra,
    )
