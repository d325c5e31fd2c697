"""Field selection on a table, and the ERASE-style benchmark harness.

:func:`prepare_table` splits and encodes a frame once. :func:`select_fields` runs one
ranker and keeps the top ``k`` fields. :func:`run_selection_bench` follows the ERASE
protocol: every method ranks the fields → the backbone is retrained from scratch on the
top-k fields for each k of a grid → test AUC and logloss → AUKC; and for the top-ranked
fields it compares three ways of removing them — masking at inference, retraining without
(ROAR; KAR keeps only them), and imputing them from the other fields (ROAD-style).
"""

from __future__ import annotations

import datetime
import platform
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from erasekit import progress
from erasekit._resources import measure
from erasekit.data.ctr import FieldEncoder, FieldError, FieldTable, positive_label
from erasekit.errors import MethodError, suggest
from erasekit.features.base import SelectionData, ranker_info
from erasekit.models.ctr import CTRRecipe, CTRScore, CTRSpec, evaluate, fresh_model, train_ctr
from erasekit.provenance import library_versions, sha256_arrays


@dataclass(frozen=True)
class PreparedTable:
    """A frame split into train / validation / test and encoded with one :class:`FieldEncoder` fitted on train."""

    train: FieldTable
    valid: FieldTable
    test: FieldTable
    target: str
    positive_label: str
    data_sha256: str

    def selection_data(self, spec: CTRSpec = CTRSpec(), recipe: CTRRecipe = CTRRecipe()) -> SelectionData:
        return SelectionData(self.train, self.valid, spec, recipe)


def prepare_table(frame: pd.DataFrame, target: str, categorical: Sequence[str] = (), test_frame: pd.DataFrame | None = None,
                  valid_fraction: float = 0.15, test_fraction: float = 0.2, hash_buckets: int | None = None,
                  log_numeric: bool = False, seed: int = 0) -> PreparedTable:
    """Split ``frame`` (stratified by the binary ``target``) and encode its fields.

    With ``test_frame`` the test rows come from it (e.g. Adult's official test file);
    otherwise ``test_fraction`` of ``frame`` is held out. Raises :class:`FieldError` for a
    missing or non-binary target, a one-class target, or fewer than two rows per split.
    """
    from sklearn.model_selection import train_test_split

    if target not in frame.columns:
        raise FieldError(f"target column '{target}' is not in the table{suggest(target, map(str, frame.columns))}")
    positive = positive_label(frame[target], f"target '{target}'")
    labels = (frame[target].to_numpy() == positive).astype(np.float32)
    features = frame.drop(columns=[target])
    if features.shape[1] == 0:
        raise FieldError("the table has no feature columns besides the target")
    rows = np.arange(len(frame))
    try:
        if test_frame is None:
            rows, test_rows = train_test_split(rows, test_size=test_fraction, stratify=labels, random_state=seed)
        train_rows, valid_rows = train_test_split(rows, test_size=valid_fraction, stratify=labels[rows], random_state=seed)
    except ValueError as exc:
        raise FieldError(f"cannot split {len(frame)} rows into train/validation/test: {exc}; use a larger table") from None
    encoder = FieldEncoder(categorical, hash_buckets=hash_buckets, log_numeric=log_numeric).fit(features.iloc[train_rows])
    if test_frame is None:
        test = encoder.transform(features.iloc[test_rows], labels[test_rows])
    else:
        if target not in test_frame.columns:
            raise FieldError(f"target column '{target}' is not in the test table")
        test_labels = (test_frame[target].to_numpy() == positive).astype(np.float32)
        test = encoder.transform(test_frame.drop(columns=[target]), test_labels)
    digest = sha256_arrays(pd.util.hash_pandas_object(frame, index=False).to_numpy())
    return PreparedTable(encoder.transform(features.iloc[train_rows], labels[train_rows]),
                         encoder.transform(features.iloc[valid_rows], labels[valid_rows]), test, target, str(positive), digest)


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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def rank_fields(data: SelectionData, method: str, params: Any = None, seed: int = 0) -> FieldSelection:
    """Run a registered ranker on ``data``; returns every field in order (``k`` = all fields)."""
    info = ranker_info(method)
    params = params if params is not None else info.params_type()
    if not isinstance(params, info.params_type):
        raise MethodError(f"method '{method}' takes {info.params_type.__name__}, got {type(params).__name__}")
    with measure() as cost:
        result = info.fn(data, params, seed)
    scores = np.asarray(result.scores, dtype=np.float64)
    if scores.shape != (len(data.names),) or not np.isfinite(scores).all():
        raise FieldError(f"method '{method}' returned unusable scores (shape {scores.shape}, finite: {np.isfinite(scores).all()})")
    if result.ranking is not None:
        order = np.argsort(result.ranking, kind="stable")
    else:
        order = np.lexsort((np.arange(len(scores)), -scores))
    ranking = tuple(data.names[i] for i in order)
    return FieldSelection(method, asdict(params), len(ranking), ranking, (), dict(zip(data.names, scores.tolist())),
                          ranking, cost.seconds, cost.peak_memory_mb, seed, dict(result.extra))


def select_fields(data: SelectionData, method: str, k: int, params: Any = None, seed: int = 0) -> FieldSelection:
    """Rank with ``method`` and keep the top ``k`` fields."""
    n = len(data.names)
    if not isinstance(k, (int, np.integer)) or k < 1 or k > n:
        raise FieldError(f"k={k} is out of range: the table has {n} fields; choose 1 ≤ k ≤ {n}")
    ranked = rank_fields(data, method, params, seed)
    return FieldSelection(ranked.method, ranked.params, int(k), ranked.ranking[:k], ranked.ranking[k:], ranked.scores,
                          ranked.ranking, ranked.seconds, ranked.peak_memory_mb, seed, ranked.extra)


# --------------------------------------------------------------------------- benchmark harness

@dataclass(frozen=True)
class CurvePoint:
    k: int
    auc: float  # test AUC of the backbone retrained from scratch on the top-k fields (higher is better)
    logloss: float  # its test logloss (lower is better)


@dataclass(frozen=True)
class RemovalComparison:
    """Test AUC after removing ``fields`` (a method's top-ranked) three ways, plus the references.

    ``full_auc``: all fields. ``mask_auc``: the full model with the fields replaced by the
    missing/mean baseline at inference (cheap, out of distribution). ``roar_auc``: retrained
    without them. ``kar_auc``: retrained on them alone. ``impute_auc``: the full model with
    the fields imputed from the others (noisy, sampled imputation fitted on train; ROAD-style).
    A large gap between ``mask_auc`` and ``roar_auc`` means masking misstates importance.
    """

    method: str
    seed: int
    fields: tuple[str, ...]
    full_auc: float
    mask_auc: float
    roar_auc: float
    kar_auc: float
    impute_auc: float


@dataclass(frozen=True)
class MethodRun:
    selection: FieldSelection
    curve: tuple[CurvePoint, ...]
    aukc: float  # area under the AUC-vs-k curve divided by the k range (mean AUC over the grid; higher is better)
    precision_at_k: dict[int, float] | None  # share of the top-k that are truly relevant fields (synthetic data only)


@dataclass(frozen=True)
class SelectionBenchReport:
    """Everything one ERASE-style run produced. ``backbone_seconds``: one training of the backbone on all fields, per seed."""

    dataset: str
    fields: tuple[str, ...]
    relevant_fields: tuple[str, ...] | None
    ks: tuple[int, ...]
    seeds: tuple[int, ...]
    spec: dict[str, Any]
    recipe: dict[str, Any]
    full_model: dict[int, CTRScore]
    backbone_seconds: dict[int, float]
    runs: tuple[MethodRun, ...]
    removals: tuple[RemovalComparison, ...]
    data_sha256: str
    created: str = field(default_factory=lambda: datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))
    machine: str = field(default_factory=lambda: f"{platform.machine()}, {platform.system()}, python {platform.python_version()}")
    versions: dict[str, str] = field(default_factory=library_versions)
    schema: str = "erasekit.selection-bench/1"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["full_model"] = {str(k): v for k, v in data["full_model"].items()}
        data["backbone_seconds"] = {str(k): v for k, v in data["backbone_seconds"].items()}
        for run in data["runs"]:
            if run["precision_at_k"] is not None:
                run["precision_at_k"] = {str(k): v for k, v in run["precision_at_k"].items()}
        return data

    def summary(self) -> list[dict[str, Any]]:
        """Per method: mean over seeds of AUKC, AUC at each k, precision@k, selection seconds and memory."""
        rows = []
        for method in dict.fromkeys(r.selection.method for r in self.runs):
            runs = [r for r in self.runs if r.selection.method == method]
            row: dict[str, Any] = {
                "method": method,
                "family": ranker_info(method).family,
                "aukc": _mean_std([r.aukc for r in runs]),
                "seconds": _mean_std([r.selection.seconds for r in runs]),
                "peak_memory_mb": _mean_std([r.selection.peak_memory_mb for r in runs]),
                "auc": {k: _mean_std([p.auc for r in runs for p in r.curve if p.k == k]) for k in self.ks},
                "logloss": {k: _mean_std([p.logloss for r in runs for p in r.curve if p.k == k]) for k in self.ks},
            }
            if self.relevant_fields is not None:
                row["precision_at_k"] = {k: _mean_std([r.precision_at_k[k] for r in runs]) for k in self.ks}
            rows.append(row)
        return rows


def _mean_std(values: list[float]) -> tuple[float, float]:
    array = np.asarray(values, dtype=np.float64)
    return (float(array.mean()), float(array.std())) if len(array) else (float("nan"), 0.0)


def aukc(ks: Sequence[int], aucs: Sequence[float]) -> float:
    """Area under AUC-vs-k, normalised by the k range (so it is in AUC units); one point → that AUC."""
    ks = np.asarray(ks, dtype=np.float64)
    aucs = np.asarray(aucs, dtype=np.float64)
    if len(ks) == 1:
        return float(aucs[0])
    order = np.argsort(ks)
    ks, aucs = ks[order], aucs[order]
    return float(np.sum((ks[1:] - ks[:-1]) * (aucs[1:] + aucs[:-1]) / 2) / (ks[-1] - ks[0]))


def precision_at_k(ranking: Sequence[str], relevant: Sequence[str], k: int) -> float:
    """Share of the top ``k`` ranked fields that are relevant (denominator min(k, |relevant|))."""
    top = set(ranking[:k])
    return len(top & set(relevant)) / min(k, len(relevant))


def train_on(prepared: PreparedTable, fields: Sequence[str], spec: CTRSpec, recipe: CTRRecipe, seed: int) -> CTRScore:
    """Retrain the backbone from scratch on ``fields`` only; score it on the test split."""
    train, valid, test = (t.select(list(fields)) for t in (prepared.train, prepared.valid, prepared.test))
    model = train_ctr(fresh_model(train.fields, spec, seed), train, valid, recipe, seed=seed, description=f"retrain on {len(fields)} fields")
    return evaluate(model, test)


def masked(table: FieldTable, fields: Sequence[str]) -> FieldTable:
    """``fields`` replaced by the baseline: reserved index 0 (categorical), the training mean 0 (numeric)."""
    codes, numeric = table.codes.copy(), table.numeric.copy()
    for name in fields:
        j = table.names.index(name)
        if j < table.n_categorical:
            codes[:, j] = 0
        else:
            numeric[:, j - table.n_categorical] = 0.0
    return FieldTable(table.fields, codes, numeric, table.labels)


def imputed(data: SelectionData, table: FieldTable, fields: Sequence[str], seed: int, max_rows: int = 5000) -> FieldTable:
    """``fields`` of ``table`` replaced by draws from a model of them given the other fields (fitted on train).

    Categorical: multinomial logistic regression on the other fields' one-hot encoding,
    sampled from its predicted distribution. Numeric: linear regression plus Gaussian noise
    with the residual spread. Labels are never used, so imputation cannot leak the target.
    """
    from sklearn.linear_model import LinearRegression, LogisticRegression

    rng = np.random.default_rng(seed)
    train_hot, _, owner = data.one_hot
    fit_rows = rng.choice(len(train_hot), min(max_rows, len(train_hot)), replace=False)
    target_hot = table.one_hot()[0]
    codes, numeric = table.codes.copy(), table.numeric.copy()
    removed = {table.names.index(n) for n in fields}
    inputs = np.isin(owner, [j for j in range(len(table.names)) if j not in removed])
    X_fit, X_out = train_hot[fit_rows][:, inputs], target_hot[:, inputs]
    for j in sorted(removed):
        if j < table.n_categorical:
            y_fit = data.train.codes[fit_rows, j]
            if len(np.unique(y_fit)) < 2:
                codes[:, j] = y_fit[0]
                continue
            model = LogisticRegression(max_iter=300).fit(X_fit, y_fit)
            probabilities = model.predict_proba(X_out)
            cumulative = probabilities.cumsum(axis=1)
            draws = (rng.random((len(X_out), 1)) > cumulative).sum(axis=1)
            codes[:, j] = model.classes_[np.minimum(draws, len(model.classes_) - 1)]
        else:
            y_fit = data.train.numeric[fit_rows, j - table.n_categorical]
            model = LinearRegression().fit(X_fit, y_fit)
            spread = float(np.std(y_fit - model.predict(X_fit)))
            numeric[:, j - table.n_categorical] = model.predict(X_out) + rng.normal(0, spread, len(X_out))
    return FieldTable(table.fields, codes, numeric, table.labels)


def run_selection_bench(prepared: PreparedTable, methods: Sequence[str], ks: Sequence[int], seeds: Sequence[int] = (0,),
                        params: dict[str, Any] | None = None, spec: CTRSpec = CTRSpec(), recipe: CTRRecipe = CTRRecipe(),
                        relevant: Sequence[str] | None = None, removal_top: int = 3, dataset: str = "table") -> SelectionBenchReport:
    """The ERASE protocol over ``methods`` × ``seeds`` (see the module docstring)."""
    names = prepared.train.names
    ks = tuple(sorted(set(int(k) for k in ks)))
    if not ks or ks[0] < 1 or ks[-1] > len(names):
        raise FieldError(f"every k must be in 1..{len(names)} (the number of fields), got {list(ks)}")
    if not 1 <= removal_top < len(names):
        raise FieldError(f"removal_top must be in 1..{len(names) - 1}, got {removal_top}")
    if relevant is not None:
        unknown = [f for f in relevant if f not in names]
        if unknown:
            raise FieldError(f"relevant fields {unknown} are not in the table")
    for method in methods:
        ranker_info(method)
    params = params or {}
    data = prepared.selection_data(spec, recipe)
    runs, removals = [], []
    full_scores: dict[int, CTRScore] = {}
    backbone_seconds: dict[int, float] = {}
    with progress.session():
        for seed in seeds:
            with measure() as cost:
                full = train_ctr(fresh_model(prepared.train.fields, spec, seed), prepared.train, prepared.valid, recipe, seed=seed,
                                 description="backbone on all fields")
            backbone_seconds[seed] = cost.seconds
            full_scores[seed] = evaluate(full, prepared.test)
            for method in methods:
                selection = rank_fields(data, method, params.get(method), seed)
                curve = tuple(CurvePoint(k, *_score_tuple(train_on(prepared, selection.ranking[:k], spec, recipe, seed)))
                              for k in ks)
                precision = ({k: precision_at_k(selection.ranking, relevant, k) for k in ks} if relevant is not None else None)
                runs.append(MethodRun(selection, curve, aukc([p.k for p in curve], [p.auc for p in curve]), precision))
                top = selection.ranking[:removal_top]
                rest = selection.ranking[removal_top:]
                removals.append(RemovalComparison(
                    method, seed, tuple(top), full_scores[seed].auc,
                    evaluate(full, masked(prepared.test, top)).auc,
                    train_on(prepared, rest, spec, recipe, seed).auc,
                    train_on(prepared, top, spec, recipe, seed).auc,
                    evaluate(full, imputed(data, prepared.test, top, seed)).auc))
    return SelectionBenchReport(dataset, tuple(names), tuple(relevant) if relevant is not None else None, ks, tuple(seeds),
                                asdict(spec), recipe.to_dict(), full_scores, backbone_seconds, tuple(runs), tuple(removals),
                                prepared.data_sha256)


def _score_tuple(score: CTRScore) -> tuple[float, float]:
    return score.auc, score.logloss
