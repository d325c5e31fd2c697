"""Feature selection on a plain table, judged by what the kept columns are worth.

:func:`run_table_selection` ranks the columns of a :class:`~erasekit.data.plain_tables.PlainTable`
with one registered selector (fitted on the training rows only), keeps the top ``k``, and scores a
fixed downstream model on the held-out rows three ways: on the kept columns, on every column, and
on ``random_draws`` random choices of ``k`` columns (the baseline any selector must beat).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.base import clone

from erasekit.core.errors import FieldError
from erasekit.core.provenance import Provenance
from erasekit.core.resources import measure
from erasekit.data.plain_tables import PlainTable
from erasekit.features.base import (
    CONTEXT_PARAMETERS,
    FieldSelection,
    RankingSelector,
    lightgbm_estimator,
    reportable_params,
    selector_info,
)
from erasekit.report.selection import HeldOutScore, RandomBaseline, TableSelectionReport

DOWNSTREAM = ("gbdt", "mlp")


def downstream_model(kind: str, task: str, classes: int, n_rows: int, n_features: int, seed: int):
    """The fixed model that judges a column choice: LightGBM (data-adapted settings) or a small MLP on standardised columns."""
    if kind == "gbdt":
        return lightgbm_estimator(task, classes, n_rows, n_features, seed)
    if kind == "mlp":
        from sklearn.neural_network import MLPClassifier, MLPRegressor
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        network = MLPRegressor if task == "regression" else MLPClassifier
        return make_pipeline(
            StandardScaler(), network(hidden_layer_sizes=(64,), early_stopping=True, max_iter=300, random_state=seed)
        )
    raise FieldError(f"unknown downstream model '{kind}'; choose one of {', '.join(DOWNSTREAM)}")


def held_out_score(table: PlainTable, columns: Sequence[int] | np.ndarray, kind: str, seed: int) -> float:
    """Accuracy (classification) or R² (regression) on the test rows of the model trained on ``columns``."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    cols = list(columns)
    model = downstream_model(kind, table.task, len(table.classes), len(table.y_train), len(cols), seed)
    with warnings.catch_warnings():  # the MLP's early stopping may end at max_iter: its score still counts
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(table.x_train[:, cols], table.y_train)
    return float(model.score(table.x_test[:, cols], table.y_test))


def random_baseline(table: PlainTable, k: int, kind: str, draws: int, seed: int) -> RandomBaseline:
    rng = np.random.default_rng(seed)
    scores = [held_out_score(table, np.sort(rng.choice(table.n_columns, k, replace=False)), kind, seed) for _ in range(draws)]
    return RandomBaseline(k, float(np.mean(scores)), float(np.std(scores)), draws, tuple(scores))


def judge(at_k: float, baseline: RandomBaseline, metric: str) -> tuple[str, str]:
    """Better than random only when the kept columns beat every random draw and the draws' mean by 2 standard deviations."""
    bar = max(baseline.mean + 2 * baseline.std, max(baseline.scores))
    if at_k > bar:
        return (
            "better_than_random",
            f"{metric} {at_k:.4f} above every random {baseline.columns}-column draw and mean + 2 sd ({bar:.4f})",
        )
    return (
        "no_better_than_random",
        f"{metric} {at_k:.4f} within the random draws (mean {baseline.mean:.4f} ± {baseline.std:.4f}, best {max(baseline.scores):.4f}): "
        "the ranking carries no evidence beyond chance",
    )


def rank_columns(table: PlainTable, method: str, selector: RankingSelector | None, seed: int) -> tuple[FieldSelection, bool]:
    """Fit ``method`` on the training rows; every column ranked (k = all of them)."""
    info = selector_info(method)
    selector = clone(selector) if selector is not None else info.selector_type()
    changes: dict = {"random_state": seed, "k": None}
    if "task" in selector.get_params(deep=False):
        changes["task"] = table.task
    selector.set_params(**changes)
    if table.task not in info.selector_type.tasks:
        from erasekit.features.base import selectors_for

        raise FieldError(
            f"method '{method}' cannot rank columns for a {table.task} target; methods that can: {', '.join(selectors_for(table.task))}"
        )
    with measure() as cost:
        selector.fit(table.x_train, table.y_train)
    order = np.argsort(selector.ranking_, kind="stable")
    ranking = tuple(table.columns[i] for i in order)
    params = {k: v for k, v in selector.get_params(deep=False).items() if k not in (*CONTEXT_PARAMETERS, "k")}
    selection = FieldSelection(
        method=method,
        params=reportable_params(params),
        k=len(ranking),
        kept=ranking,
        removed=(),
        scores=dict(zip(table.columns, np.asarray(selector.scores_, dtype=float).tolist())),
        ranking=ranking,
        seconds=cost.seconds,
        peak_memory_mb=cost.peak_memory_mb,
        seed=seed,
        extra={key: float(value) for key, value in getattr(selector, "extra_", {}).items()},
    )
    return selection, bool(getattr(selector, "complete_", True))


def run_table_selection(
    table: PlainTable,
    method: str,
    k: int,
    selector: RankingSelector | None = None,
    seed: int = 0,
    downstream: str = "gbdt",
    random_draws: int = 10,
    data_label: str = "",
    command: str = "",
) -> TableSelectionReport:
    """Rank, keep the top ``k``, and judge the choice against every column and random columns (module docstring)."""
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or not 1 <= k <= table.n_columns:
        raise FieldError(
            f"k={k} is out of range: the table has {table.n_columns} columns besides the target; choose 1 ≤ k ≤ {table.n_columns}"
        )
    if downstream not in DOWNSTREAM:
        raise FieldError(f"unknown downstream model '{downstream}'; choose one of {', '.join(DOWNSTREAM)}")
    if random_draws < 1:
        raise FieldError(f"random draws must be at least 1, got {random_draws}")
    ranked, complete = rank_columns(table, method, selector, seed)
    kept = ranked.ranking[:k]
    index = {name: j for j, name in enumerate(table.columns)}
    selection = FieldSelection(
        ranked.method, ranked.params, int(k), kept, ranked.ranking[k:], ranked.scores, ranked.ranking,
        ranked.seconds, ranked.peak_memory_mb, seed, ranked.extra,
    )  # fmt: skip
    metric = "r2" if table.task == "regression" else "accuracy"
    at_k = HeldOutScore(int(k), held_out_score(table, [index[name] for name in kept], downstream, seed))
    baseline = random_baseline(table, int(k), downstream, random_draws, seed)
    verdict, reason = judge(at_k.score, baseline, metric)
    return TableSelectionReport(
        data=data_label,
        target=table.target,
        task=table.task,
        classes=table.classes,
        metric=metric,
        downstream=downstream,
        n_train=len(table.y_train),
        n_test=len(table.y_test),
        selection=selection,
        at_k=at_k,
        all_columns=HeldOutScore(table.n_columns, held_out_score(table, range(table.n_columns), downstream, seed)),
        random_k=baseline,
        verdict=verdict,
        verdict_reason=reason,
        selector_complete=complete,
        data_sha256=table.data_sha256,
        provenance=Provenance.collect(seeds=(seed,), data_sha256=table.data_sha256, command=command),
    )
