"""The concept-erasure pipeline behind ``erasekit erase``: fit on a training split, audit on held-out.

Methods never compute metrics here either: the eraser is fitted, then the audit probes the
original and erased representations on the same held-out split.
"""

from __future__ import annotations

import time
from typing import Literal

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from erasekit.audit.probes import PROBES, ProbeResult, cross_covariance_norm, linear_verdict, mean_squared_edit, run_probe
from erasekit.concepts.base import ConceptEraser, eraser_info, fit_eraser
from erasekit.concepts.encoding import ConceptEncoding, as_features, check_pair
from erasekit.concepts.tabular import MISSING, FeatureRemover, TableEncoder, check_columns, is_categorical
from erasekit.core import progress
from erasekit.core.errors import ConceptError
from erasekit.core.provenance import Provenance, sha256_arrays
from erasekit.report.concepts import ConceptInfo, ConceptReport, ConceptSource, ProbeRow


def _split(n: int, stratify, test_fraction: float, seed: int):
    if not 0.0 < test_fraction < 1.0:
        raise ConceptError(f"--test-fraction must be in (0, 1), got {test_fraction}")
    rows = np.arange(n)
    try:
        return train_test_split(rows, test_size=test_fraction, random_state=seed, stratify=stratify)
    except ValueError:  # a class too small to stratify
        return train_test_split(rows, test_size=test_fraction, random_state=seed)


def _probe_rows(representation, target, x_train, z_train, x_test, z_test, numeric, probes, seed, n_boot):
    rows = []
    with progress.step(f"probes on {representation}", len(probes)) as advance:
        for probe in probes:
            rows.append(
                ProbeRow(representation, target, run_probe(probe, x_train, z_train, x_test, z_test, numeric, seed, n_boot))
            )
            advance(1)
    return rows


def _verdicts(rows: list[ProbeRow]) -> dict[str, str]:
    verdicts = {}
    for rep in dict.fromkeys(r.representation for r in rows):
        per_target: dict[str, list[ProbeResult]] = {}
        for row in rows:
            if row.representation == rep:
                per_target.setdefault(row.target, []).append(row.result)
        found = [linear_verdict(tuple(results)) for results in per_target.values()]
        verdicts[rep] = next((v for v in found if v != "linearly guarded"), "linearly guarded")
    return verdicts


def erase_embeddings(
    x,
    z,
    method: str = "leace",
    params=None,
    test_fraction: float = 0.3,
    seed: int = 0,
    probes=PROBES,
    n_boot: int = 1000,
    concept_name: str = "concept",
    command: str = "",
) -> tuple[ConceptReport, np.ndarray, ConceptEraser]:
    """Fit ``method`` on a training split of (x, z), erase every row, audit on the held-out split."""
    info = eraser_info(method)
    params = params if params is not None else info.params_type()
    features = as_features(x).numpy()
    check_pair(features, z)
    z = np.asarray(z)
    encoding = ConceptEncoding.infer(z)
    numeric = encoding.kind == "numeric"
    train, test = _split(len(features), None if numeric else z, test_fraction, seed)
    started = time.perf_counter()
    eraser = fit_eraser(features[train], z[train], method, params)
    fit_seconds = time.perf_counter() - started
    erased = eraser(features, z) if eraser.needs_labels else eraser(features)
    rows = []
    for name, data in (("original", features), ("erased", erased)):
        rows += _probe_rows(name, concept_name, data[train], z[train], data[test], z[test], numeric, probes, seed, n_boot)
    zmat = encoding.matrix(z[test]).numpy()
    digest = sha256_arrays(features)
    report = ConceptReport(
        source=ConceptSource(
            kind="embeddings", rows=len(features), width=features.shape[1], n_train=len(train), n_test=len(test), sha256=digest
        ),
        concept=ConceptInfo(name=concept_name, kind=encoding.kind, classes=tuple(str(c) for c in encoding.classes)),
        method=method,
        params=params,
        fit_seconds=fit_seconds,
        probes=tuple(rows),
        verdicts=_verdicts(rows),
        utility={},
        edit={
            "mean_squared_edit (held-out)": mean_squared_edit(features[test], erased[test]),
            "mean_squared_norm (held-out, for scale)": float(
                np.mean(np.sum((features[test] - features[train].mean(0)) ** 2, axis=1))
            ),
            "cross_covariance_norm before": cross_covariance_norm(features[test], zmat),
            "cross_covariance_norm after": cross_covariance_norm(erased[test], zmat),
        },
        provenance=Provenance.collect(seeds=(seed,), data_sha256=digest, command=command),
    )
    return report, erased.astype(np.asarray(x).dtype if np.asarray(x).dtype.kind == "f" else np.float64), eraser


def _utility(x_train, y_train, x_test, y_test) -> float:
    from sklearn.linear_model import LogisticRegression

    return float(LogisticRegression(max_iter=2000).fit(x_train, y_train).score(x_test, y_test))


def erase_table(
    frame: pd.DataFrame,
    target: str,
    remove: list[str],
    proxies: Literal["leace", "none"] = "leace",
    test_fraction: float = 0.3,
    seed: int = 0,
    probes=PROBES,
    n_boot: int = 1000,
    command: str = "",
) -> tuple[ConceptReport, pd.DataFrame]:
    """Remove ``remove`` columns from a table (and with ``proxies="leace"`` their linear trace)."""
    check_columns(frame, [target], "target")
    check_columns(frame, remove, "removed")
    if target in remove:
        raise ConceptError(f"the target '{target}' cannot also be removed")
    features = frame.drop(columns=[target])
    labels = frame[target].astype(str).to_numpy()
    if len(np.unique(labels)) < 2:
        raise ConceptError(f"target '{target}' has a single class; nothing to predict")
    train, test = _split(len(frame), labels, test_fraction, seed)
    started = time.perf_counter()
    remover = FeatureRemover(remove, proxies=proxies).fit(features.iloc[train])
    fit_seconds = time.perf_counter() - started
    plain = FeatureRemover(remove, proxies="none").fit(features.iloc[train])
    full = TableEncoder().fit(features.iloc[train])
    representations = {"original (all columns)": full.transform(features), "dropped": plain.transform(features)}
    if proxies == "leace":
        representations["dropped+leace"] = remover.transform(features)
    rows = []
    for column in remove:
        numeric = not is_categorical(features[column])
        values = features[column].to_numpy(float) if numeric else features[column].fillna(MISSING).astype(str).to_numpy()
        for name, data in representations.items():
            rows += _probe_rows(name, column, data[train], values[train], data[test], values[test], numeric, probes, seed, n_boot)
    utility = {name: _utility(data[train], labels[train], data[test], labels[test]) for name, data in representations.items()}
    concept = TableEncoder().fit(features.iloc[train][remove]).transform(features.iloc[test][remove])
    edit = {"cross_covariance_norm dropped": cross_covariance_norm(representations["dropped"][test], concept)}
    if proxies == "leace":
        edit["cross_covariance_norm dropped+leace"] = cross_covariance_norm(representations["dropped+leace"][test], concept)
        edit["mean_squared_edit (held-out)"] = mean_squared_edit(
            representations["dropped"][test], representations["dropped+leace"][test]
        )
    erased = pd.DataFrame(remover.transform(features), columns=list(remover.get_feature_names_out()), index=frame.index)
    erased[target] = frame[target].to_numpy()
    digest = sha256_arrays(pd.util.hash_pandas_object(frame, index=False).to_numpy())
    report = ConceptReport(
        source=ConceptSource(
            kind="table",
            rows=len(frame),
            width=len(frame.columns),
            n_train=len(train),
            n_test=len(test),
            sha256=digest,
            columns=tuple(str(c) for c in frame.columns),
            target=target,
        ),
        concept=ConceptInfo(name=", ".join(remove), kind="columns", removed=tuple(remove), proxies=proxies),
        method="drop" if proxies == "none" else "drop+leace",
        params=None,
        fit_seconds=fit_seconds,
        probes=tuple(rows),
        verdicts=_verdicts(rows),
        utility=utility,
        edit=edit,
        provenance=Provenance.collect(seeds=(seed,), data_sha256=digest, command=command),
    )
    return report, erased
