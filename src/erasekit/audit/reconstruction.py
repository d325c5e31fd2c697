"""Can a removed column be rebuilt from the kept ones? Probes on held-out rows, before and after proxy erasure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pandas as pd

from erasekit.audit.probes import ProbeResult, run_probe
from erasekit.concepts.tabular import MISSING, FeatureRemover, is_categorical


@dataclass(frozen=True)
class Reconstruction:
    """How well a removed column is rebuilt from what is kept (held-out): R² for numeric
    columns, accuracy vs the majority baseline for categorical ones."""

    column: str
    stage: Literal["dropped", "dropped+leace"]
    probes: tuple[ProbeResult, ...]


def reconstruction_audit(
    train: pd.DataFrame, test: pd.DataFrame, remover: FeatureRemover, probes=("linear", "gbm"), seed: int = 0, n_boot: int = 500
) -> tuple[Reconstruction, ...]:
    """Probe every removed column from the remover's output, and from the plain drop for comparison."""
    plain = FeatureRemover(remover.columns, proxies="none").fit(train)
    stages: list[tuple[Literal["dropped", "dropped+leace"], FeatureRemover]] = [("dropped", plain)]
    if remover.proxies == "leace":
        stages.append(("dropped+leace", remover))
    results = []
    for column in remover.columns:
        numeric = not is_categorical(train[column])
        z_train = train[column].fillna(MISSING).astype(str).to_numpy() if not numeric else train[column].to_numpy(float)
        z_test = test[column].fillna(MISSING).astype(str).to_numpy() if not numeric else test[column].to_numpy(float)
        for stage, fitted in stages:
            x_train, x_test = fitted.transform(train), fitted.transform(test)
            found = tuple(
                run_probe(p, x_train, z_train, x_test, z_test, numeric=numeric, seed=seed, n_boot=n_boot) for p in probes
            )
            results.append(Reconstruction(column, stage, found))
    return tuple(results)
