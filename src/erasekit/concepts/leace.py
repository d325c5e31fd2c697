"""LEACE and its orthogonal variant, wrapping the ``concept-erasure`` package (Belrose et al., "LEACE: Perfect
linear concept erasure in closed form", NeurIPS 2023)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import torch

from erasekit.concepts.base import AffineEraser, ColumnRanges, constant_from_variance, register_eraser, require_samples
from erasekit.concepts.encoding import ConceptEncoding, as_features, check_pair
from erasekit.core.errors import ConceptError, MethodError
from erasekit.core.params import POSITIVE, Params


@dataclass(frozen=True)
class LeaceParams(Params):
    """Options passed to ``concept_erasure.LeaceFitter`` (its defaults): shrinkage of the
    covariance estimate on, singular values below ``svd_tol`` 0.01 truncated, covariance
    trace constrained not to grow."""

    shrinkage: bool = True
    svd_tol: Annotated[float, POSITIVE] = 0.01
    constrain_cov_trace: bool = True


class _LeaceFitter:
    def __init__(self, method: str, x_dim: int, encoding: ConceptEncoding, params: LeaceParams):
        from concept_erasure import LeaceFitter

        self.method = "leace" if method == "leace" else "leace_orth"
        self.encoding = encoding
        self.x_dim = x_dim
        self.n_samples = 0
        # LEACE tracks the covariance anyway; the orthogonal variant does not, so it tracks column ranges
        self._ranges = ColumnRanges(x_dim) if self.method != "leace" else None
        self._make = lambda device: LeaceFitter(
            x_dim,
            encoding.width,
            method=method,
            dtype=torch.float64,
            device=device,
            shrinkage=params.shrinkage,
            svd_tol=params.svd_tol,
            constrain_cov_trace=params.constrain_cov_trace,
        )
        self._fitter: LeaceFitter | None = None  # created on the first batch's device: statistics stay where the data is

    def update(self, x, z) -> _LeaceFitter:
        features = as_features(x)
        check_pair(features, z)
        if features.shape[1] != self.x_dim:
            raise MethodError(f"batch has {features.shape[1]} features, the fitter expects {self.x_dim}")
        if self._fitter is None:
            self._fitter = self._make(features.device)
        self._fitter.update(features, self.encoding.matrix(z).to(features.device))
        if self._ranges is not None:
            self._ranges.update(features)
        self.n_samples += len(features)
        return self

    def eraser(self) -> AffineEraser:
        if self.method == "leace":
            require_samples("LEACE", self.n_samples, self.x_dim + 1, f"to estimate a {self.x_dim}×{self.x_dim} covariance")
        else:
            require_samples("leace_orth", self.n_samples, 2, "to estimate a cross-covariance")
        fitted = self._statistics().eraser
        return AffineEraser(
            self.method, fitted.proj_left, fitted.proj_right, fitted.bias, self.encoding, self._constant_columns()
        )

    def _constant_columns(self) -> torch.Tensor | None:
        if self._ranges is not None:
            return self._ranges.constant()
        return constant_from_variance(torch.diagonal(self._statistics().sigma_xx_))

    def _statistics(self):
        """The fitted co-moments; created by the first batch."""
        if self._fitter is None:
            raise ConceptError("the fitter has seen no data; call update(x, z) with at least one batch first")
        return self._fitter  # raw co-moments, before shrinkage


@register_eraser("leace", LeaceParams)
def leace(x_dim: int, encoding: ConceptEncoding, params: LeaceParams) -> _LeaceFitter:
    """LEACE: the smallest affine edit after which no linear classifier beats a constant (concept-erasure)."""
    return _LeaceFitter("leace", x_dim, encoding, params)


@register_eraser("leace_orth", LeaceParams)
def leace_orth(x_dim: int, encoding: ConceptEncoding, params: LeaceParams) -> _LeaceFitter:
    """Orthogonal projection off the cross-covariance directions (LEACE with W = I; concept-erasure)."""
    return _LeaceFitter("orth", x_dim, encoding, params)
