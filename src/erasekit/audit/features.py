"""Measuring a feature selection: AUKC and precision@k, and the full model under masked or imputed fields.

Masking replaces fields by their baseline at inference (cheap, out of distribution);
imputation replaces them by draws from a model of them given the other fields (ROAD-style).
Retraining without them (ROAR) is the reference, run by :mod:`erasekit.pipelines.selection`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from erasekit.data.ctr import FieldTable
from erasekit.features.base import SelectionData


def aukc(ks: Sequence[int], aucs: Sequence[float]) -> float:
    """Area under AUC-vs-k, normalised by the k range (so it is in AUC units); one point → that AUC."""
    k = np.asarray(ks, dtype=np.float64)
    auc = np.asarray(aucs, dtype=np.float64)
    if len(k) == 1:
        return float(auc[0])
    order = np.argsort(k)
    k, auc = k[order], auc[order]
    return float(np.sum((k[1:] - k[:-1]) * (auc[1:] + auc[:-1]) / 2) / (k[-1] - k[0]))


def precision_at_k(ranking: Sequence[str], relevant: Sequence[str], k: int) -> float:
    """Share of the top ``k`` ranked fields that are relevant (denominator min(k, |relevant|))."""
    top = set(ranking[:k])
    return len(top & set(relevant)) / min(k, len(relevant))


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
