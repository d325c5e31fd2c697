"""Concept labels Z: binary, multi-class or numeric, validated and encoded for the erasers."""

from __future__ import annotations

from collections.abc import Sized
from dataclasses import dataclass
from typing import Literal, cast

import numpy as np
import torch

from erasekit.core.errors import ConceptError

ConceptKind = Literal["binary", "multiclass", "numeric"]


def as_features(x, name: str = "X") -> torch.Tensor:
    """A finite 2-D float64 tensor ``[n, d]``."""
    if not torch.is_tensor(x):
        try:
            values = np.asarray(x, dtype=np.float64)
        except (TypeError, ValueError):
            raise ConceptError(f"{name} must hold numbers; encode text or categorical columns first") from None
        x = torch.as_tensor(values if values.flags.writeable else values.copy())  # read-only views (pandas) are copied
    array = x
    if array.ndim != 2:
        raise ConceptError(f"{name} must be a 2-D array [samples, features], got shape {tuple(array.shape)}")
    array = array.detach().to(torch.float64)
    # a finite sum implies every element is finite; only then skip the (slower) element scan
    if not torch.isfinite(array.sum()) and not torch.isfinite(array).all():
        row = int((~torch.isfinite(array)).any(dim=1).nonzero()[0, 0])
        raise ConceptError(f"{name} contains NaN or inf (first at row {row}); clean or impute it first")
    return array


@dataclass(frozen=True)
class ConceptEncoding:
    """How raw concept values become the matrix the erasers see.

    ``binary``/``multiclass``: values are class labels (any hashable scalar), encoded one-hot
    over ``classes`` (sorted). ``numeric``: ``width`` real-valued columns used as they are.
    """

    kind: ConceptKind
    classes: tuple = ()
    width: int = 1

    @classmethod
    def infer(cls, z, kind: ConceptKind | None = None) -> ConceptEncoding:
        values = np.asarray(z.detach().cpu() if torch.is_tensor(z) else z)
        if values.ndim == 0 or len(values) == 0:
            raise ConceptError("the concept labels Z are empty; give one label per sample")
        if kind is None:
            numeric_values = values.dtype.kind == "f" and not np.all(np.mod(values, 1) == 0)
            kind = "numeric" if numeric_values or values.ndim == 2 else None
        if kind == "numeric":
            numbers = values.astype(np.float64).reshape(len(values), -1)
            if not np.all(np.isfinite(numbers)):
                raise ConceptError("Z contains NaN or inf; clean or drop those samples")
            if np.all(numbers.std(axis=0) == 0):
                raise ConceptError("numeric Z is constant; there is no concept to erase")
            return cls(kind="numeric", width=numbers.shape[1])
        if values.ndim != 1:
            raise ConceptError(f"class labels Z must be 1-D, got shape {values.shape}; use kind='numeric' for vectors")
        classes = tuple(sorted(np.unique(values).tolist()))
        if len(classes) < 2:
            raise ConceptError(f"Z has a single class ({classes[0]!r}); erasure needs at least two concept values")
        inferred: ConceptKind = "binary" if len(classes) == 2 else "multiclass"
        if kind is not None and kind != inferred and not (kind == "multiclass" and inferred == "binary"):
            raise ConceptError(f"Z has {len(classes)} classes, which does not fit kind='{kind}'")
        return cls(kind=kind or inferred, classes=classes, width=len(classes))

    def class_index(self, z) -> torch.Tensor:
        """Integer class ids ``[n]`` (0..k-1) for categorical concepts."""
        if self.kind == "numeric":
            raise ConceptError("numeric concepts have no class ids")
        values = np.asarray(z.detach().cpu() if torch.is_tensor(z) else z).ravel()
        lookup = {c: i for i, c in enumerate(self.classes)}
        try:
            return torch.as_tensor([lookup[v] for v in values.tolist()], dtype=torch.int64)
        except KeyError as exc:
            raise ConceptError(f"concept value {exc.args[0]!r} was not seen when fitting (known: {list(self.classes)})") from None

    def matrix(self, z) -> torch.Tensor:
        """``[n, k]`` float64: one-hot for classes, the values themselves for numeric Z."""
        if self.kind == "numeric":
            values = np.asarray(z.detach().cpu() if torch.is_tensor(z) else z, dtype=np.float64)
            return torch.as_tensor(values.reshape(len(values), -1))
        return torch.nn.functional.one_hot(self.class_index(z), len(self.classes)).to(torch.float64)

    def to_metadata(self) -> dict[str, str]:
        import json

        return {"concept_kind": self.kind, "concept_classes": json.dumps(list(self.classes)), "concept_width": str(self.width)}

    @classmethod
    def from_metadata(cls, meta: dict[str, str]) -> ConceptEncoding:
        import json

        return cls(
            kind=cast(ConceptKind, meta["concept_kind"]),
            classes=tuple(json.loads(meta["concept_classes"])),
            width=int(meta["concept_width"]),
        )


def check_pair(x: Sized, z: Sized) -> None:
    n_z = len(z)
    if len(x) != n_z:
        raise ConceptError(f"X has {len(x)} samples but Z has {n_z}; give one concept label per sample")
