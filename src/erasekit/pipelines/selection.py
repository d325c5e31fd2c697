"""The ERASE benchmark protocol for field selection (Jia et al., "ERASE: Benchmarking Feature Selection
Methods for Deep Recommender Systems", CIKM 2024).

:func:`run_selection_bench`: every method ranks the fields → the backbone is retrained from
scratch on the top-k fields for each k of a grid → test AUC and logloss → AUKC; and for the
top-ranked fields it compares three ways of removing them — masking at inference, retraining
without (ROAR; KAR keeps only them), and imputing them from the other fields (ROAD-style).
:func:`run_selection` is one method on one table, behind ``erasekit select``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from erasekit.audit.features import aukc, imputed, masked, precision_at_k
from erasekit.core import progress
from erasekit.core.errors import FieldError
from erasekit.core.provenance import Provenance
from erasekit.core.resources import measure
from erasekit.data.ctr import PreparedTable
from erasekit.features.base import RankingSelector, SelectionData, rank_fields, select_fields, selector_info
from erasekit.models.ctr import CTRRecipe, CTRScore, CTRSpec, evaluate, fresh_model, train_ctr
from erasekit.report.selection import (
    CurvePoint,
    MeanStd,
    MethodRun,
    MethodSummary,
    RemovalComparison,
    SelectionBenchReport,
    SelectionReport,
)


def run_selection(
    prepared: PreparedTable,
    method: str,
    k: int,
    selector: RankingSelector | None = None,
    seed: int = 0,
    spec: CTRSpec = CTRSpec(),
    recipe: CTRRecipe = CTRRecipe(),
    data_label: str = "",
    command: str = "",
) -> SelectionReport:
    """Rank ``prepared``'s fields with ``method`` and keep the top ``k``."""
    selection = select_fields(SelectionData(prepared.train, prepared.valid, spec, recipe), method, k, selector, seed)
    return SelectionReport(
        data=data_label,
        target=prepared.target,
        data_sha256=prepared.data_sha256,
        selection=selection,
        provenance=Provenance.collect(seeds=(seed,), data_sha256=prepared.data_sha256, command=command),
    )


def train_on(prepared: PreparedTable, fields: Sequence[str], spec: CTRSpec, recipe: CTRRecipe, seed: int) -> CTRScore:
    """The reference: retrain the backbone from scratch on ``fields`` only; score it on the test split."""
    train, valid, test = (t.select(list(fields)) for t in (prepared.train, prepared.valid, prepared.test))
    model = train_ctr(
        fresh_model(train.fields, spec, seed), train, valid, recipe, seed=seed, description=f"retrain on {len(fields)} fields"
    )
    return evaluate(model, test)


def _mean_std(values: Sequence[float]) -> MeanStd:
    array = np.asarray(values, dtype=np.float64)
    return MeanStd(float(array.mean()), float(array.std())) if len(array) else MeanStd(float("nan"), 0.0)


def summarise(runs: Sequence[MethodRun], ks: Sequence[int], with_precision: bool) -> tuple[MethodSummary, ...]:
    """Per method: mean ± std over seeds of AUKC, AUC and logloss at each k, precision@k, selection seconds and memory."""
    rows = []
    for method in dict.fromkeys(r.selection.method for r in runs):
        mine = [r for r in runs if r.selection.method == method]
        rows.append(
            MethodSummary(
                method=method,
                family=selector_info(method).family,
                aukc=_mean_std([r.aukc for r in mine]),
                seconds=_mean_std([r.selection.seconds for r in mine]),
                peak_memory_mb=_mean_std([r.selection.peak_memory_mb for r in mine]),
                auc={k: _mean_std([p.auc for r in mine for p in r.curve if p.k == k]) for k in ks},
                logloss={k: _mean_std([p.logloss for r in mine for p in r.curve if p.k == k]) for k in ks},
                precision_at_k={k: _mean_std([r.precision_at_k[k] for r in mine if r.precision_at_k]) for k in ks}
                if with_precision
                else None,
            )
        )
    return tuple(rows)


def run_selection_bench(
    prepared: PreparedTable,
    methods: Sequence[str],
    ks: Sequence[int],
    seeds: Sequence[int] = (0,),
    params: dict[str, RankingSelector] | None = None,
    spec: CTRSpec = CTRSpec(),
    recipe: CTRRecipe = CTRRecipe(),
    relevant: Sequence[str] | None = None,
    removal_top: int = 3,
    dataset: str = "table",
    command: str = "",
) -> SelectionBenchReport:
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
        selector_info(method)
    params = params or {}
    data = SelectionData(prepared.train, prepared.valid, spec, recipe)
    runs, removals = [], []
    full_scores: dict[int, CTRScore] = {}
    backbone_seconds: dict[int, float] = {}
    with progress.session():
        for seed in seeds:
            with measure() as cost:
                full = train_ctr(
                    fresh_model(prepared.train.fields, spec, seed),
                    prepared.train,
                    prepared.valid,
                    recipe,
                    seed=seed,
                    description="backbone on all fields",
                )
            backbone_seconds[seed] = cost.seconds
            full_scores[seed] = evaluate(full, prepared.test)
            for method in methods:
                selection = rank_fields(data, method, params.get(method), seed)
                curve = tuple(
                    CurvePoint(k, *_score_tuple(train_on(prepared, selection.ranking[:k], spec, recipe, seed))) for k in ks
                )
                precision = {k: precision_at_k(selection.ranking, relevant, k) for k in ks} if relevant is not None else None
                runs.append(MethodRun(selection, curve, aukc([p.k for p in curve], [p.auc for p in curve]), precision))
                top = selection.ranking[:removal_top]
                rest = selection.ranking[removal_top:]
                removals.append(
                    RemovalComparison(
                        method,
                        seed,
                        tuple(top),
                        full_scores[seed].auc,
                        evaluate(full, masked(prepared.test, top)).auc,
                        train_on(prepared, rest, spec, recipe, seed).auc,
                        train_on(prepared, top, spec, recipe, seed).auc,
                        evaluate(full, imputed(data, prepared.test, top, seed)).auc,
                    )
                )
    return SelectionBenchReport(
        dataset=dataset,
        fields=tuple(names),
        relevant_fields=tuple(relevant) if relevant is not None else None,
        ks=ks,
        seeds=tuple(seeds),
        spec=spec,
        recipe=recipe,
        full_model=full_scores,
        backbone_seconds=backbone_seconds,
        runs=tuple(runs),
        removals=tuple(removals),
        summary=summarise(runs, ks, relevant is not None),
        data_sha256=prepared.data_sha256,
        provenance=Provenance.collect(seeds=seeds, data_sha256=prepared.data_sha256, command=command),
    )


def _score_tuple(score: CTRScore) -> tuple[float, float]:
    return score.auc, score.logloss
