"""INLP — iterative nullspace projection (Ravfogel et al., "Null It Out", ACL 2020), our own implementation.

Repeat: fit a linear classifier (or regressor, for numeric Z) to predict Z from the
currently projected features, then add its weight directions to the set that is projected
out. The eraser is r(x) = x − (x − μ)·U·Uᵀ with U an orthonormal basis of all directions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

import numpy as np
import torch

from erasekit.concepts.base import AffineEraser, constant_from_variance, register_eraser, require_samples
from erasekit.concepts.encoding import ConceptEncoding, as_features, check_pair
from erasekit.core.errors import MethodError
from erasekit.core.params import AT_LEAST_ONE, POSITIVE, Params


@dataclass(frozen=True)
class INLPParams(Params):
    """``iterations`` T (10: the INLP paper uses 10–20 for small concepts); ``classifier``:
    ``logistic`` (scikit-learn LogisticRegression, C = 1, as in the INLP code; keeps the data
    in memory) or ``least_squares`` (closed-form least-squares directions from streamed
    second moments, for data larger than memory). Numeric Z always uses least squares."""

    iterations: Annotated[int, AT_LEAST_ONE] = 10
    classifier: Literal["logistic", "least_squares"] = "logistic"
    C: Annotated[float, POSITIVE] = 1.0
    max_iter: Annotated[int, AT_LEAST_ONE] = 1000
    seed: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.classifier not in ("logistic", "least_squares"):
            raise MethodError(f"INLPParams.classifier must be logistic or least_squares, got {self.classifier!r}")


def _extend_basis(basis: torch.Tensor, directions: torch.Tensor, tol: float = 1e-6) -> torch.Tensor:
    """Append the part of ``directions`` (``[d, m]``) orthogonal to ``basis`` (``[d, r]``).

    Directions are normalised first, so ``tol`` is relative: a direction already (almost)
    in the span adds nothing.
    """
    norms = directions.norm(dim=0, keepdim=True)
    directions = directions[:, norms.squeeze(0) > 0] / norms[norms > 0]
    residual = directions - basis @ (basis.T @ directions)
    if residual.numel() == 0:
        return basis
    u, s, _ = torch.linalg.svd(residual, full_matrices=False)
    room = basis.shape[0] - basis.shape[1]
    return torch.cat([basis, u[:, s > tol][:, :room]], dim=1)


def _complement(basis: torch.Tensor) -> torch.Tensor:
    """Orthonormal basis ``[d, d - r]`` of the orthogonal complement of ``basis`` ``[d, r]``."""
    d, r = basis.shape
    if r == 0:
        return torch.eye(d, dtype=basis.dtype, device=basis.device)
    q, _ = torch.linalg.qr(torch.cat([basis, torch.eye(d, dtype=basis.dtype, device=basis.device)], dim=1), mode="reduced")
    return q[:, r:d]


class _INLPFitter:
    def __init__(self, x_dim: int, encoding: ConceptEncoding, params: INLPParams):
        self.x_dim, self.encoding, self.params = x_dim, encoding, params
        self.streaming = params.classifier == "least_squares" or encoding.kind == "numeric"
        self.n_samples = 0
        self._mean = torch.zeros(x_dim, dtype=torch.float64)
        self._zmean = torch.zeros(encoding.width, dtype=torch.float64)
        self._sxx = torch.zeros(x_dim, x_dim, dtype=torch.float64)
        self._sxz = torch.zeros(x_dim, encoding.width, dtype=torch.float64)
        self._batches: list[tuple[torch.Tensor, torch.Tensor]] = []

    def update(self, x, z) -> _INLPFitter:
        features = as_features(x)
        check_pair(features, z)
        if features.shape[1] != self.x_dim:
            raise MethodError(f"batch has {features.shape[1]} features, the fitter expects {self.x_dim}")
        if self.n_samples == 0 and self._mean.device != features.device:  # statistics stay where the data is
            self._mean, self._zmean, self._sxx, self._sxz = (
                t.to(features.device) for t in (self._mean, self._zmean, self._sxx, self._sxz)
            )
        zmat = self.encoding.matrix(z).to(features.device)
        # Welford-style running means and co-moments (exact, batch by batch)
        n_old, n_new = self.n_samples, len(features)
        total = n_old + n_new
        dx, dz = features.mean(0) - self._mean, zmat.mean(0) - self._zmean
        cx, cz = features - features.mean(0), zmat - zmat.mean(0)
        self._sxx += cx.T @ cx + torch.outer(dx, dx) * n_old * n_new / total
        self._sxz += cx.T @ cz + torch.outer(dx, dz) * n_old * n_new / total
        self._mean += dx * n_new / total
        self._zmean += dz * n_new / total
        self.n_samples = total
        if not self.streaming:
            self._batches.append((features.cpu(), self.encoding.class_index(z)))  # scikit-learn fits on the CPU
        return self

    def _least_squares_basis(self) -> torch.Tensor:
        basis = torch.zeros(self.x_dim, 0, dtype=torch.float64, device=self._sxx.device)
        for _ in range(self.params.iterations):
            if basis.shape[1] >= self.x_dim:
                break
            # least-squares directions of the data restricted to what is not yet projected out
            keep = _complement(basis)
            local = torch.linalg.lstsq(keep.T @ self._sxx @ keep, keep.T @ self._sxz).solution
            grown = _extend_basis(basis, keep @ local)
            if grown.shape[1] == basis.shape[1]:
                break
            basis = grown
        return basis

    def _logistic_basis(self) -> torch.Tensor:
        from sklearn.linear_model import LogisticRegression

        x = torch.cat([b[0] for b in self._batches]) - self._mean.cpu()
        labels = torch.cat([b[1] for b in self._batches]).numpy()
        basis = torch.zeros(self.x_dim, 0, dtype=torch.float64)
        for _ in range(self.params.iterations):
            if basis.shape[1] >= self.x_dim:
                break
            projected = (x - (x @ basis) @ basis.T).numpy()
            clf = LogisticRegression(C=self.params.C, max_iter=self.params.max_iter, random_state=self.params.seed)
            clf.fit(projected, labels)
            grown = _extend_basis(basis, torch.as_tensor(np.asarray(clf.coef_, dtype=np.float64)).T)
            if grown.shape[1] == basis.shape[1]:
                break
            basis = grown
        return basis

    def eraser(self) -> AffineEraser:
        require_samples("INLP", self.n_samples, 2 * max(len(self.encoding.classes), 1), "at least two per concept value")
        if self.streaming:
            require_samples(
                "INLP (least squares)", self.n_samples, self.x_dim + 1, f"to estimate a {self.x_dim}×{self.x_dim} covariance"
            )
            basis = self._least_squares_basis()
        else:
            basis = self._logistic_basis()
        return AffineEraser(
            "inlp",
            basis,
            basis.T.contiguous(),
            self._mean.clone().to(basis.device),
            self.encoding,
            _on(constant_from_variance(torch.diagonal(self._sxx)), basis.device),
        )


def _on(mask: torch.Tensor | None, device: torch.device) -> torch.Tensor | None:
    return None if mask is None else mask.to(device)


@register_eraser("inlp", INLPParams)
def inlp(x_dim: int, encoding: ConceptEncoding, params: INLPParams) -> _INLPFitter:
    """INLP: project out linear-classifier directions for the concept, iteratively (own implementation)."""
    return _INLPFitter(x_dim, encoding, params)
