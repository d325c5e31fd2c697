"""A plain table for feature selection: numeric columns, a target of any kind, a stratified split.

:func:`prepare_plain_table` infers the task from the target (``binary``, ``multiclass`` or
``regression``; ``task=`` overrides), keeps numeric columns as they are, turns declared
categorical columns into integer codes learned on the training rows (unseen values → −1),
and refuses what selection cannot use, each with a one-line message: a missing target, a
one-valued target, a class with a single row, a non-numeric column nobody declared, missing
numeric values, a table too large for the memory budget.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from erasekit.core.errors import DataError, suggest
from erasekit.core.provenance import sha256_arrays

TASKS = ("binary", "multiclass", "regression")
# an integer-valued target with more distinct values than this is a quantity, not a set of classes
MAX_CLASSES_INFERRED = 50


@dataclass(frozen=True, eq=False)
class PlainTable:
    """Train and test matrices (float64, one column per input column), the target and what it is."""

    columns: tuple[str, ...]
    target: str
    task: str
    x_train: np.ndarray
    x_test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray
    classes: tuple[str, ...]  # class names (classification), in label order; empty for regression
    categorical: tuple[str, ...]
    data_sha256: str

    @property
    def n_columns(self) -> int:
        return len(self.columns)


def infer_task(values) -> str:
    """binary / multiclass for labels (text, or integers with at most 50 distinct values), regression otherwise.

    The one rule for every selection path (the CLI on a table, and a selector given ``task=None``).
    """
    values = values if isinstance(values, pd.Series) else pd.Series(np.asarray(values).ravel())
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return "binary" if values.nunique() <= 2 else "multiclass"
    numbers = values.to_numpy(dtype=np.float64)
    integral = bool(np.all(np.mod(numbers, 1) == 0))
    distinct = len(np.unique(numbers))
    if integral and distinct <= MAX_CLASSES_INFERRED:
        return "binary" if distinct <= 2 else "multiclass"
    return "regression"


def available_memory_bytes() -> int:
    """What the OS says is available (Linux MemAvailable), or 4 GiB where it does not say."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 4 << 30


def prepare_plain_table(
    frame: pd.DataFrame,
    target: str,
    task: str | None = None,
    categorical: Sequence[str] = (),
    test_fraction: float = 0.25,
    seed: int = 0,
    memory_budget_mb: float | None = None,
) -> PlainTable:
    """Validate, encode and split ``frame`` for selection on ``target`` (see the module docstring).

    ``memory_budget_mb`` (default: half of the available memory) bounds the float64 matrix times
    four, the copies a selector makes.
    """
    if target not in frame.columns:
        raise DataError(f"target column '{target}' is not in the table{suggest(target, map(str, frame.columns))}")
    if task is not None and task not in TASKS:
        raise DataError(f"--task must be one of {', '.join(TASKS)}, got '{task}'")
    unknown = [c for c in categorical if c not in frame.columns]
    if unknown:
        raise DataError(f"categorical column '{unknown[0]}' is not in the table{suggest(unknown[0], map(str, frame.columns))}")
    features = [str(c) for c in frame.columns if c != target]
    if not features:
        raise DataError("the table has no columns besides the target")
    budget = (memory_budget_mb * 2**20) if memory_budget_mb is not None else available_memory_bytes() / 2
    needed = 4 * 8 * len(frame) * len(features)
    if needed > budget:
        raise DataError(
            f"the table ({len(frame):,} rows × {len(features):,} columns) needs about {needed / 2**30:.2f} GiB as float64 "
            f"working copies, over the memory budget of {budget / 2**30:.2f} GiB; sample rows or drop columns first"
        )
    labels = frame[target]
    if labels.isna().any():
        raise DataError(f"target '{target}' is missing in {int(labels.isna().sum())} rows; drop those rows first")
    task = task or infer_task(labels)
    if task == "regression":
        if not pd.api.types.is_numeric_dtype(labels):
            raise DataError(f"--task regression needs a numeric target, but '{target}' holds text")
        y = labels.to_numpy(dtype=np.float64)
        if y.std() == 0:
            raise DataError(f"target '{target}' has a single value; there is nothing to predict")
        classes: tuple[str, ...] = ()
    else:
        names, y = np.unique(labels.astype(str).to_numpy(), return_inverse=True)
        counts = np.bincount(y)
        if len(names) < 2:
            raise DataError(f"target '{target}' has a single value ({names[0]}); there is nothing to predict")
        if counts.min() < 2:
            lonely = names[int(np.argmin(counts))]
            raise DataError(
                f"class '{lonely}' of target '{target}' has a single row; every class needs at least two (drop or merge it)"
            )
        if task == "binary" and len(names) != 2:
            raise DataError(f"--task binary, but target '{target}' has {len(names)} classes; use --task multiclass")
        classes = tuple(str(n) for n in names)
    declared = set(categorical)
    for column in features:
        series = frame[column]
        if column in declared:
            continue
        if not pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
            raise DataError(f"column '{column}' is not numeric; declare it --categorical {column} (integer codes) or drop it")
        missing = int(series.isna().sum())
        if missing:
            raise DataError(f"numeric column '{column}' has {missing} missing values; impute or drop them first")
    rows = np.arange(len(frame))
    train_rows, test_rows = _split(rows, y if task != "regression" else None, test_fraction, seed)
    matrix = np.empty((len(frame), len(features)), dtype=np.float64)
    for j, column in enumerate(features):
        series = frame[column]
        if column in declared:
            text = series.astype(str).where(series.notna(), "")
            levels = {value: code for code, value in enumerate(pd.unique(text.iloc[train_rows]))}
            matrix[:, j] = text.map(levels).fillna(-1).to_numpy(dtype=np.float64)
        else:
            matrix[:, j] = series.to_numpy(dtype=np.float64)
    if not np.isfinite(matrix).all():
        column = features[int(np.flatnonzero(~np.isfinite(matrix).all(axis=0))[0])]
        raise DataError(f"numeric column '{column}' has infinite values; clean it first")
    return PlainTable(
        columns=tuple(features),
        target=target,
        task=task,
        x_train=matrix[train_rows],
        x_test=matrix[test_rows],
        y_train=y[train_rows],
        y_test=y[test_rows],
        classes=classes,
        categorical=tuple(c for c in features if c in declared),
        data_sha256=sha256_arrays(matrix, np.asarray(y)),
    )


def _split(rows: np.ndarray, labels: np.ndarray | None, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    if not 0 < fraction < 1:
        raise DataError(f"test fraction must be in (0, 1), got {fraction}")
    stratify = labels if labels is not None and len(rows) * fraction >= len(np.unique(labels)) else None
    train, test = train_test_split(rows, test_size=fraction, stratify=stratify, random_state=seed)
    return np.sort(train), np.sort(test)
