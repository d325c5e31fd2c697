"""The eraser contract: fit on (X, Z) → a frozen eraser callable on new X; save/load as safetensors.

Every method is a *fitter* factory registered by name. A fitter accumulates statistics
batch by batch (``update``) and produces an immutable eraser (``eraser()``), so data larger
than memory can be streamed. ``fit_eraser`` does both in one call.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from erasekit.concepts.encoding import ConceptEncoding, ConceptKind, as_features, check_pair
from erasekit.core.errors import ConceptError, MethodError
from erasekit.core.io import atomic_write_bytes
from erasekit.core.params import field_types
from erasekit.core.registry import Registry

ERASER_FORMAT = "erasekit.eraser/1"


def _check_width(x: torch.Tensor, x_dim: int) -> None:
    if x.shape[-1] != x_dim:
        raise ConceptError(
            f"the eraser was fitted on {x_dim} features but got data with {x.shape[-1]}; apply it to data of the same width"
        )


def _like_input(result: torch.Tensor, original):
    """Return numpy for numpy input, a tensor of the input's dtype otherwise."""
    if torch.is_tensor(original):
        return result.to(original.dtype)
    dtype = np.asarray(original).dtype
    return result.numpy().astype(dtype if dtype.kind == "f" else np.float64, copy=False)


@dataclass(frozen=True)
class AffineEraser:
    """r(x) = x − (x − bias)·proj_rightᵀ·proj_leftᵀ — the form of LEACE, its orthogonal variant and INLP.

    ``proj_left`` ``[d, k]``, ``proj_right`` ``[k, d]``, ``bias`` ``[d]``; applied with
    ``concept_erasure.LeaceEraser`` so LEACE output is exactly the library's — except in the
    ``constant_columns`` (``[d]`` bool): columns that never varied in the fitting data carry no
    concept information there, and are passed through unchanged, so the edit cannot write
    floating-point residue that follows the concept into them (e.g. dead ReLU units).
    """

    method: str
    proj_left: torch.Tensor
    proj_right: torch.Tensor
    bias: torch.Tensor
    encoding: ConceptEncoding
    constant_columns: torch.Tensor | None = None
    needs_labels = False

    @property
    def x_dim(self) -> int:
        return self.proj_left.shape[0]

    def __call__(self, x, z=None):
        from concept_erasure import LeaceEraser

        features = as_features(x)
        _check_width(features, self.x_dim)
        eraser = self.to(features.device)  # a no-op when it is already there (see to())
        erased = LeaceEraser(eraser.proj_left, eraser.proj_right, eraser.bias)(features)
        return _like_input(keep_constant_columns(erased, features, eraser.constant_columns), x)

    def to(self, device) -> AffineEraser:
        """The same eraser with its tensors on ``device`` (move it once, next to the data it will edit)."""
        device = torch.device(device)
        if self.proj_left.device == device:
            return self
        moved = {k: v.to(device) for k, v in self.tensors().items()}
        constant = moved.pop("constant_columns", None)
        return AffineEraser(
            self.method, encoding=self.encoding, constant_columns=None if constant is None else constant.bool(), **moved
        )

    def tensors(self) -> dict[str, torch.Tensor]:
        tensors = {"proj_left": self.proj_left, "proj_right": self.proj_right, "bias": self.bias}
        if self.constant_columns is not None:
            tensors["constant_columns"] = self.constant_columns.to(torch.uint8)
        return tensors


def keep_constant_columns(erased: torch.Tensor, original: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """``erased`` with the ``mask`` columns taken from ``original`` (differentiable; any leading shape)."""
    if mask is None:
        return erased
    return torch.where(mask.to(device=erased.device, dtype=torch.bool), original.to(erased.dtype), erased)


def constant_from_variance(variance: torch.Tensor, relative: float = 1e-12) -> torch.Tensor | None:
    """Columns whose standard deviation is at most ``relative`` × the largest one (bool ``[d]``), or None."""
    spread = variance.clamp_min(0).sqrt()
    mask = spread <= relative * float(spread.max().clamp_min(torch.finfo(torch.float64).tiny))
    return mask if bool(mask.any()) else None


class ColumnRanges:
    """Each column's minimum and maximum over the fitting batches, to find the columns that never vary.

    A column is constant when its range is at most ``relative`` times the largest column range
    (exactly constant columns, and columns whose variation is floating-point residue).
    """

    relative = 1e-12

    def __init__(self, x_dim: int) -> None:
        self.low = torch.full((x_dim,), torch.inf, dtype=torch.float64)
        self.high = torch.full((x_dim,), -torch.inf, dtype=torch.float64)

    def update(self, features: torch.Tensor) -> None:
        if self.low.device != features.device:  # follow the data
            self.low, self.high = self.low.to(features.device), self.high.to(features.device)
        if len(features):
            low, high = torch.aminmax(features, dim=0)  # one pass
            self.low = torch.minimum(self.low, low.to(self.low))
            self.high = torch.maximum(self.high, high.to(self.high))

    def constant(self) -> torch.Tensor | None:
        spread = self.high - self.low
        mask = spread <= self.relative * float(spread.max().clamp_min(torch.finfo(torch.float64).tiny))
        return mask if bool(mask.any()) else None


@dataclass(frozen=True)
class QuadraticConceptEraser:
    """Quadratic LEACE (class-conditional optimal transport to the barycenter).

    It moves each sample from *its own* class distribution, so it needs the concept labels
    when applied: ``eraser(x, z)``. It cannot be used where labels are unknown.
    """

    method: str
    class_means: torch.Tensor
    global_mean: torch.Tensor
    ot_maps: torch.Tensor
    encoding: ConceptEncoding
    needs_labels = True

    @property
    def x_dim(self) -> int:
        return self.class_means.shape[1]

    def __call__(self, x, z=None):
        from concept_erasure import QuadraticEraser

        if z is None:
            raise ConceptError(
                "the quadratic eraser needs the concept labels when applied (eraser(x, z)): it transports each "
                "sample from its own class; use leace or leace_orth when labels are unknown at application time"
            )
        features = as_features(x)
        _check_width(features, self.x_dim)
        check_pair(features, z)
        labels = self.encoding.class_index(z).to(features.device)
        eraser = self.to(features.device)
        erased = QuadraticEraser(eraser.class_means, eraser.global_mean, eraser.ot_maps)(features, labels)
        return _like_input(erased, x)

    def to(self, device) -> QuadraticConceptEraser:
        """The same eraser with its tensors on ``device``."""
        device = torch.device(device)
        if self.class_means.device == device:
            return self
        return QuadraticConceptEraser(self.method, encoding=self.encoding, **{k: v.to(device) for k, v in self.tensors().items()})

    def tensors(self) -> dict[str, torch.Tensor]:
        return {"class_means": self.class_means, "global_mean": self.global_mean, "ot_maps": self.ot_maps}


ConceptEraser = AffineEraser | QuadraticConceptEraser


class EraserFitter(Protocol):
    """Accumulates statistics; ``eraser()`` freezes them. ``n_samples`` counts what was seen."""

    n_samples: int

    def update(self, x, z) -> EraserFitter: ...

    def eraser(self) -> ConceptEraser: ...


@dataclass(frozen=True)
class EraserInfo:
    name: str
    params_type: type
    make_fitter: Callable[[int, ConceptEncoding, Any], EraserFitter]
    summary: str
    needs_labels: bool

    def parameter_defaults(self) -> dict[str, Any]:
        return dataclasses.asdict(self.params_type())

    def parameter_types(self) -> dict[str, Any]:
        return field_types(self.params_type)

    def make_params(self, values: dict[str, Any]):
        return self.params_type(**values)


ERASERS: Registry[EraserInfo] = Registry("eraser", example="leace,inlp")


def register_eraser(name: str, params_type: type, needs_labels: bool = False):
    """Register a fitter factory ``(x_dim, encoding, params) -> EraserFitter`` under ``name``."""

    def decorate(factory):
        summary = (factory.__doc__ or "").strip().splitlines()[0] if factory.__doc__ else ""
        ERASERS.add(EraserInfo(name, params_type, factory, summary, needs_labels))
        return factory

    return decorate


def available_erasers() -> tuple[str, ...]:
    return ERASERS.names()


def eraser_info(name: str) -> EraserInfo:
    return ERASERS.get(name)


def eraser_fitter(method: str, x_dim: int, encoding: ConceptEncoding, params: Any = None) -> EraserFitter:
    """A streaming fitter: call ``update(x_batch, z_batch)`` repeatedly, then ``eraser()``."""
    info = eraser_info(method)
    params = info.params_type() if params is None else params
    if not isinstance(params, info.params_type):
        raise MethodError(f"eraser '{method}' takes {info.params_type.__name__}, got {type(params).__name__}")
    return info.make_fitter(x_dim, encoding, params)


def fit_eraser(x, z, method: str = "leace", params: Any = None, kind: ConceptKind | None = None) -> ConceptEraser:
    """Fit an eraser on features ``x`` ``[n, d]`` and concept labels ``z`` ``[n]`` (or ``[n, m]`` numeric)."""
    features = as_features(x)
    check_pair(features, z)
    encoding = ConceptEncoding.infer(z, kind)
    return eraser_fitter(method, features.shape[1], encoding, params).update(features, z).eraser()


def require_samples(method: str, have: int, need: int, why: str) -> None:
    if have < need:
        raise ConceptError(f"{method} needs at least {need} samples ({why}); got {have} — add samples or reduce the dimension")


def eraser_bytes(eraser: ConceptEraser) -> bytes:
    """The eraser as safetensors bytes (tensors + method and concept encoding in the metadata)."""
    metadata = {"format": ERASER_FORMAT, "method": eraser.method, **eraser.encoding.to_metadata()}
    tensors = {k: v.detach().cpu().contiguous() for k, v in eraser.tensors().items()}
    return save_safetensors(tensors, metadata=metadata)


def save_eraser(eraser: ConceptEraser, path: Path) -> None:
    """Write the eraser atomically as safetensors; :func:`load_eraser` reads it back."""
    atomic_write_bytes(Path(path), eraser_bytes(eraser))


def read_tensor_file(path: Path, what: str, file_format: str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and metadata of an erasekit safetensors file of ``file_format`` (never unpickles)."""
    from safetensors import safe_open

    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
        tensors = load_safetensors(path.read_bytes())
    except (OSError, SafetensorError) as exc:
        raise ConceptError(f"cannot read {what} file {path}: it is not a safetensors file ({exc})") from None
    if metadata.get("format") != file_format:
        raise ConceptError(f"{path} is not an erasekit {what} file (format {metadata.get('format')!r})")
    return tensors, metadata


def load_eraser(path: Path) -> ConceptEraser:
    """Load an eraser saved by :func:`save_eraser` (never unpickles); a crafted or damaged file is a ConceptError."""
    tensors, metadata = read_tensor_file(path, "eraser", ERASER_FORMAT)
    try:
        encoding = ConceptEncoding.from_metadata(metadata)
        if metadata["method"] == "quadratic":
            return QuadraticConceptEraser(metadata["method"], encoding=encoding, **tensors)
        if "constant_columns" in tensors:
            tensors["constant_columns"] = tensors["constant_columns"].to(torch.bool)
        eraser = AffineEraser(metadata["method"], encoding=encoding, **tensors)
        d, k = eraser.proj_left.shape
        if eraser.proj_right.shape != (k, d) or eraser.bias.shape != (d,):
            raise ValueError(
                f"inconsistent shapes {tuple(eraser.proj_left.shape)}, {tuple(eraser.proj_right.shape)}, {tuple(eraser.bias.shape)}"
            )
        return eraser
    except (KeyError, TypeError, ValueError) as exc:
        raise ConceptError(f"{path} is not a valid eraser file ({type(exc).__name__}: {exc}); re-fit and save it") from None
