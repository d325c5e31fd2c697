"""Remove a column from a table for real: drop it *and* erase its linear trace from the rest.

Dropping a column is not removal when the kept columns predict it (proxies such as
``relationship`` for ``sex``). :class:`FeatureRemover` encodes the kept columns (numeric
standardised, categorical one-hot), fits LEACE on the training split with the removed
columns as the concept (numeric as values, categorical one-hot), and outputs the erased
matrix. :func:`erasekit.audit.reconstruction.reconstruction_audit` measures how well each removed
column can still be rebuilt, before and after.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from erasekit.concepts.base import fit_eraser
from erasekit.core.errors import ConceptError, DataError, suggest

MISSING = "<missing>"


def check_columns(frame: pd.DataFrame, names: Sequence[str], what: str) -> None:
    for name in names:
        if name not in frame.columns:
            known = [str(c) for c in frame.columns]
            raise ConceptError(f"{what} column '{name}' is not in the table{suggest(name, known)}; columns: {', '.join(known)}")


def is_categorical(series: pd.Series) -> bool:
    return not pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)


class TableEncoder:
    """Numeric columns standardised (train mean/std), categorical one-hot (unseen → all zeros)."""

    def fit(self, frame: pd.DataFrame) -> TableEncoder:
        self.numeric_ = [c for c in frame.columns if not is_categorical(frame[c])]
        self.categorical_ = [c for c in frame.columns if is_categorical(frame[c])]
        for column in self.numeric_:
            if frame[column].isna().any() or not np.isfinite(frame[column].to_numpy(dtype=float)).all():
                raise DataError(f"numeric column '{column}' has missing or infinite values; impute them first")
        self.mean_ = frame[self.numeric_].mean() if self.numeric_ else pd.Series(dtype=float)
        self.std_ = frame[self.numeric_].std(ddof=0).replace(0, 1.0) if self.numeric_ else pd.Series(dtype=float)
        self.levels_ = {c: sorted(frame[c].fillna(MISSING).astype(str).unique()) for c in self.categorical_}
        return self

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        parts = []
        if self.numeric_:
            values = frame[self.numeric_].to_numpy(dtype=np.float64)
            if not np.isfinite(values).all():
                raise DataError("numeric columns have missing or infinite values; impute them first")
            parts.append((values - self.mean_.to_numpy()) / self.std_.to_numpy())
        for column in self.categorical_:
            values = frame[column].fillna(MISSING).astype(str).to_numpy()
            levels = self.levels_[column]
            parts.append((values[:, None] == np.asarray(levels)[None, :]).astype(np.float64))
        return np.hstack(parts) if parts else np.zeros((len(frame), 0))

    def feature_names(self) -> list[str]:
        return list(self.numeric_) + [f"{c}={level}" for c in self.categorical_ for level in self.levels_[c]]


class FeatureRemover(TransformerMixin, BaseEstimator):
    """Drop ``columns`` from a DataFrame and (``proxies="leace"``) erase their linear trace.

    Output: the kept columns encoded as numbers (numeric standardised, categorical one-hot),
    then LEACE-erased so no linear model can predict any removed column from them better
    than a constant (on the training statistics). ``proxies="none"`` only drops.
    """

    def __init__(self, columns: Sequence[str] = (), proxies: Literal["leace", "none"] = "leace"):
        self.columns = columns
        self.proxies = proxies

    def fit(self, X: pd.DataFrame, y=None):
        if not isinstance(X, pd.DataFrame):
            raise ConceptError("FeatureRemover needs a pandas DataFrame (it works on named columns)")
        if not self.columns:
            raise ConceptError("FeatureRemover needs at least one column to remove")
        if self.proxies not in ("leace", "none"):
            raise ConceptError(f"proxies must be 'leace' or 'none', got {self.proxies!r}")
        check_columns(X, self.columns, "removed")
        self.kept_columns_ = [c for c in X.columns if c not in set(self.columns)]
        if not self.kept_columns_:
            raise ConceptError("removing every column leaves nothing to keep")
        self.encoder_ = TableEncoder().fit(X[self.kept_columns_])
        self.concept_encoder_ = TableEncoder().fit(X[list(self.columns)])
        self.feature_names_in_ = np.asarray([str(c) for c in X.columns], dtype=object)
        self.n_features_in_ = len(X.columns)
        self.eraser_ = None
        if self.proxies == "leace":
            kept = self.encoder_.transform(X[self.kept_columns_])
            concept = self.concept_encoder_.transform(X[list(self.columns)])
            self.eraser_ = fit_eraser(kept, concept, "leace", kind="numeric")
        return self

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self, "encoder_")
        if not isinstance(X, pd.DataFrame):
            raise ConceptError("FeatureRemover needs a pandas DataFrame (it works on named columns)")
        check_columns(X, self.kept_columns_, "kept")
        kept = self.encoder_.transform(X[self.kept_columns_])
        return self.eraser_(kept) if self.eraser_ is not None else kept

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        check_is_fitted(self, "encoder_")
        return np.asarray(self.encoder_.feature_names(), dtype=object)


REMOVER_FORMAT = "erasekit.feature-remover/1"


def remover_bytes(remover: FeatureRemover) -> bytes:
    """A fitted :class:`FeatureRemover` as safetensors: the eraser's tensors, and the encoders as JSON metadata."""
    import json

    from safetensors.torch import save as save_safetensors

    check_is_fitted(remover, "encoder_")
    encoders = {}
    for name, encoder in (("kept", remover.encoder_), ("removed", remover.concept_encoder_)):
        encoders[name] = {
            "numeric": [str(c) for c in encoder.numeric_],
            "categorical": [str(c) for c in encoder.categorical_],
            "mean": [float(v) for v in encoder.mean_.to_numpy()],
            "std": [float(v) for v in encoder.std_.to_numpy()],
            "levels": {str(c): list(levels) for c, levels in encoder.levels_.items()},
        }
    state: dict[str, object] = {
        "columns": [str(c) for c in remover.columns],
        "proxies": remover.proxies,
        "kept_columns": [str(c) for c in remover.kept_columns_],
        "feature_names_in": [str(c) for c in remover.feature_names_in_],
        "encoders": encoders,
    }
    tensors = {}
    if remover.eraser_ is not None:
        tensors = {f"eraser.{k}": v.detach().cpu().contiguous() for k, v in remover.eraser_.tensors().items()}
        state["eraser"] = remover.eraser_.encoding.to_metadata()
    return save_safetensors(tensors, metadata={"format": REMOVER_FORMAT, "state": json.dumps(state)})


def save_remover(remover: FeatureRemover, path) -> None:
    """Write a fitted remover atomically; :func:`load_remover` reads it back to transform new rows."""
    from pathlib import Path

    from erasekit.core.io import atomic_write_bytes

    atomic_write_bytes(Path(path), remover_bytes(remover))


def load_remover(path) -> FeatureRemover:
    """A fitted :class:`FeatureRemover` saved by :func:`save_remover` (never unpickles)."""
    import json

    from erasekit.concepts.base import AffineEraser, read_tensor_file
    from erasekit.concepts.encoding import ConceptEncoding

    tensors, metadata = read_tensor_file(path, "feature-remover", REMOVER_FORMAT)
    try:
        state = json.loads(metadata["state"])
        remover = FeatureRemover(state["columns"], proxies=state["proxies"])
        remover.kept_columns_ = state["kept_columns"]
        remover.feature_names_in_ = np.asarray(state["feature_names_in"], dtype=object)
        remover.n_features_in_ = len(remover.feature_names_in_)
        remover.encoder_, remover.concept_encoder_ = (_encoder(state["encoders"][k]) for k in ("kept", "removed"))
        remover.eraser_ = None
        if "eraser" in state:
            parts = {k.removeprefix("eraser."): v for k, v in tensors.items()}
            if "constant_columns" in parts:
                parts["constant_columns"] = parts["constant_columns"].to(torch.bool)
            remover.eraser_ = AffineEraser("leace", encoding=ConceptEncoding.from_metadata(state["eraser"]), **parts)
    except (KeyError, TypeError, ValueError) as exc:
        raise ConceptError(f"{path} is not a valid feature-remover file ({exc!s}); re-fit and save it") from None
    return remover


def _encoder(state: dict) -> TableEncoder:
    encoder = TableEncoder()
    encoder.numeric_ = list(state["numeric"])
    encoder.categorical_ = list(state["categorical"])
    encoder.mean_ = pd.Series(state["mean"], index=encoder.numeric_, dtype=float)
    encoder.std_ = pd.Series(state["std"], index=encoder.numeric_, dtype=float)
    encoder.levels_ = {c: list(levels) for c, levels in state["levels"].items()}
    return encoder
