"""The concept-erasure pipeline behind ``erasekit erase``: fit on a training split, audit on held-out.

Methods never compute metrics here either: the eraser is fitted, then the audit probes the
original and erased representations on the same held-out split.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Literal

import numpy as np
import pandas as pd
import torch
from sklearn.model_selection import train_test_split

from erasekit.audit.probes import (
    PROBES,
    ProbeResult,
    cross_covariance_norm,
    linear_verdict,
    mean_squared_edit,
    near_constant_columns,
    residue_probe,
    run_probe,
)
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


UTILITY_WARNING = 0.02  # main-task accuracy lost by a representation, as a fraction, above which the report warns
_SEVERITY = ("linear leakage", "not assessed", "linearly guarded")


def _judge(rows: list[ProbeRow], control: str) -> tuple[list[ProbeRow], dict[str, str], list[str]]:
    """Mark probes whose positive control (the same probe on ``control``) failed, and give each representation a verdict."""
    found = {(r.target, r.result.probe): r.result for r in rows if r.representation == control}
    judged, notes = [], []
    for row in rows:
        positive = found.get((row.target, row.result.probe))
        if row.representation != control and positive is not None and not positive.leaks:
            row = replace(row, evidence=False)
            note = (
                f"the {row.result.probe} probe does not find '{row.target}' in the {control} data either "
                f"({positive.metric} {positive.score:.3f}, baseline {positive.baseline:.3f}): not used as evidence"
            )
            if note not in notes:
                notes.append(note)
        judged.append(row)
    verdicts = {}
    for rep in dict.fromkeys(r.representation for r in judged):
        per_target: dict[str, list[ProbeResult]] = {}
        for row in judged:
            if row.representation == rep:
                per_target.setdefault(row.target, []).append(row.result)
        decided = [
            linear_verdict(tuple(results), None if rep == control else found.get((target, "linear")))
            for target, results in per_target.items()
        ]
        verdicts[rep] = min(decided, key=lambda v: next(i for i, s in enumerate(_SEVERITY) if v.startswith(s)))
    return judged, verdicts, notes


def _residue_notes(representation, target, x_train, z_train, x_test, z_test, numeric, seed, n_boot) -> list[str]:
    """A finding when near-constant columns carry rounding residue that follows the concept."""
    residue = residue_probe(x_train, z_train, x_test, z_test, numeric, seed, n_boot)
    if residue is None or not residue.leaks:
        return []
    return [
        f"{representation}: {int(near_constant_columns(x_train).sum())} near-constant column(s) (variation below floating-point "
        f"precision of the data's scale) carry rounding residue that follows '{target}' — a standardising linear probe "
        f"reads it at {residue.score:.3f} (baseline {residue.baseline:.3f}). It is not information at the data's scale, "
        "and the probes above leave those columns out."
    ]


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
    device: str = "cpu",
) -> tuple[ConceptReport, np.ndarray, ConceptEraser]:
    """Fit ``method`` on a training split of (x, z), erase every row, audit on the held-out split.

    ``device``: where the eraser is fitted and applied (statistics stay there); probes run on the CPU.
    """
    info = eraser_info(method)
    params = params if params is not None else info.params_type()
    features = as_features(x).numpy()
    check_pair(features, z)
    z = np.asarray(z)
    encoding = ConceptEncoding.infer(z)
    numeric = encoding.kind == "numeric"
    train, test = _split(len(features), None if numeric else z, test_fraction, seed)
    started = time.perf_counter()
    on_device = torch.as_tensor(features, device=device)
    eraser = fit_eraser(on_device[torch.as_tensor(train, device=device)], z[train], method, params)
    fit_seconds = time.perf_counter() - started
    erased = (eraser(on_device, z) if eraser.needs_labels else eraser(on_device)).cpu().numpy()
    rows = []
    for name, data in (("original", features), ("erased", erased)):
        rows += _probe_rows(name, concept_name, data[train], z[train], data[test], z[test], numeric, probes, seed, n_boot)
    rows, verdicts, notes = _judge(rows, "original")
    notes += _residue_notes("erased", concept_name, erased[train], z[train], erased[test], z[test], numeric, seed, n_boot)
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
        verdicts=verdicts,
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
        notes=tuple(notes),
    )
    return report, erased.astype(np.asarray(x).dtype if np.asarray(x).dtype.kind == "f" else np.float64), eraser


def one_hot_groups(frame: pd.DataFrame, columns: Sequence[str]) -> dict[str, list[str]]:
    """Removed 0/1 columns that together one-hot encode one attribute: a shared prefix, exactly one 1 per row."""
    by_prefix: dict[str, list[str]] = {}
    for column in columns:
        values = frame[column]
        if not pd.api.types.is_numeric_dtype(values) or values.isna().any() or not set(np.unique(values)) <= {0, 1}:
            continue
        cut = max(str(column).rfind("_"), str(column).rfind("="))
        if cut > 0:
            by_prefix.setdefault(str(column)[:cut], []).append(column)
    return {prefix: cols for prefix, cols in by_prefix.items() if len(cols) >= 2 and (frame[cols].sum(axis=1) == 1).all()}


def concept_targets(features: pd.DataFrame, remove: Sequence[str], groups: Mapping[str, Sequence[str]] | None = None):
    """(name, values, numeric) per concept to audit: each removed column, or one categorical concept per group."""
    named = {name: list(columns) for name, columns in (groups or {}).items()}
    for name, columns in named.items():
        missing = [c for c in columns if c not in remove]
        if missing or len(columns) < 2:
            raise ConceptError(f"group '{name}' must name at least two of the removed columns; not removed: {missing or 'none'}")
    grouped = {c for columns in named.values() for c in columns}
    for name, columns in one_hot_groups(features, [c for c in remove if c not in grouped]).items():
        named.setdefault(name, columns)
        grouped |= set(columns)
    targets = []
    for column in remove:
        if column in grouped:
            continue
        numeric = not is_categorical(features[column])
        values = features[column].to_numpy(float) if numeric else features[column].fillna(MISSING).astype(str).to_numpy()
        targets.append((str(column), values, numeric))
    for name, columns in named.items():
        block = features[columns]
        if all(pd.api.types.is_numeric_dtype(block[c]) for c in columns) and (block.sum(axis=1) == 1).all():
            values = np.asarray(columns, dtype=object)[block.to_numpy().argmax(axis=1)].astype(str)  # which column is hot
        else:
            values = block.fillna(MISSING).astype(str).agg("|".join, axis=1).to_numpy()
        targets.append((name, values, False))
    return targets


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
    groups: Mapping[str, Sequence[str]] | None = None,
) -> tuple[ConceptReport, pd.DataFrame, FeatureRemover]:
    """Remove ``remove`` columns from a table (and with ``proxies="leace"`` their linear trace).

    ``groups`` names sets of removed columns that encode one attribute (``{"sex": ["sex_Male",
    "sex_Female"]}``); each group is audited as one categorical concept. One-hot groups among the
    removed columns (0/1 columns sharing a prefix before ``_`` or ``=``, exactly one 1 per row)
    are found without being named.
    """
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
    notes: list[str] = []
    for concept_name, values, numeric in concept_targets(features, remove, groups):
        for name, data in representations.items():
            rows += _probe_rows(
                name, concept_name, data[train], values[train], data[test], values[test], numeric, probes, seed, n_boot
            )
            if name != "original (all columns)":
                notes += _residue_notes(
                    name, concept_name, data[train], values[train], data[test], values[test], numeric, seed, n_boot
                )
    rows, verdicts, judged_notes = _judge(rows, "original (all columns)")
    notes = judged_notes + notes
    utility = {name: _utility(data[train], labels[train], data[test], labels[test]) for name, data in representations.items()}
    for name, accuracy in utility.items():
        lost = utility["original (all columns)"] - accuracy
        if lost > UTILITY_WARNING:
            notes.append(
                f"{name} costs {100 * lost:.1f} points of '{target}' accuracy "
                f"({utility['original (all columns)']:.3f} → {accuracy:.3f})"
            )
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
        verdicts=verdicts,
        utility=utility,
        edit=edit,
        provenance=Provenance.collect(seeds=(seed,), data_sha256=digest, command=command),
        notes=tuple(notes),
    )
    return report, erased, remover
