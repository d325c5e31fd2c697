"""Quadratic LEACE (class-conditional moment matching), wrapping ``concept-erasure`` (Belrose et al., NeurIPS 2023)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from erasekit.concepts.base import QuadraticConceptEraser, register_eraser, require_samples
from erasekit.concepts.encoding import ConceptEncoding, as_features, check_pair
from erasekit.core.errors import ConceptError
from erasekit.core.params import Params


@dataclass(frozen=True)
class QuadraticParams(Params):
    """``shrinkage``: shrink each class covariance estimate (concept-erasure's default)."""

    shrinkage: bool = True


class _QuadraticFitter:
    def __init__(self, x_dim: int, encoding: ConceptEncoding, params: QuadraticParams):
        from concept_erasure import QuadraticFitter

        if encoding.kind == "numeric":
            raise ConceptError("the quadratic eraser needs class labels; numeric concepts work with leace, leace_orth or inlp")
        self.encoding = encoding
        self.x_dim = x_dim
        self.n_samples = 0
        self._counts = torch.zeros(len(encoding.classes), dtype=torch.int64)
        self._make = lambda device: QuadraticFitter(
            x_dim, len(encoding.classes), dtype=torch.float64, device=device, shrinkage=params.shrinkage
        )
        self._fitter: QuadraticFitter | None = None  # created on the first batch's device

    def update(self, x, z) -> _QuadraticFitter:
        features = as_features(x)
        check_pair(features, z)
        labels = self.encoding.class_index(z)
        if self._fitter is None:
            self._fitter = self._make(features.device)
        self._fitter.update(features, labels.to(features.device))
        self._counts += torch.bincount(labels, minlength=len(self._counts))
        self.n_samples += len(features)
        return self

    def eraser(self) -> QuadraticConceptEraser:
        smallest = int(self._counts.min())
        require_samples(
            "the quadratic eraser",
            smallest,
            self.x_dim + 1,
            f"per class, to estimate a {self.x_dim}×{self.x_dim} covariance for each class; the smallest class has {smallest}",
        )
        if self._fitter is None:  # require_samples refuses an empty fit first; this guards direct misuse
            raise ConceptError("the fitter has seen no data; call update(x, z) with at least one batch first")
        fitted = self._fitter.eraser
        return QuadraticConceptEraser("quadratic", fitted.class_means, fitted.global_mean, fitted.ot_maps, self.encoding)


@register_eraser("quadratic", QuadraticParams, needs_labels=True)
def quadratic(x_dim: int, encoding: ConceptEncoding, params: QuadraticParams) -> _QuadraticFitter:
    """Quadratic LEACE: match class-conditional means and covariances; needs labels when applied."""
    return _QuadraticFitter(x_dim, encoding, params)
