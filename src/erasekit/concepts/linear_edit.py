"""Closed-form edits of ``nn.Linear`` layers: UCE (Gandikota et al., "Unified Concept Editing in Diffusion
Models", WACV 2024), RECE (Gong et al., "Reliable and Efficient Concept Erasure of Text-to-Image Diffusion
Models", ECCV 2024) and RealEra-style neighbours (Liu et al., "RealEra", 2024).

For y = W x (+ b), keys c_i of the erase set E must produce targets v_i*, keys c_j of the
preserve set P must keep their outputs:

    W′ = (s_e Σ_E v* cᵀ + s_p W_old M_P + λ W_old) · (s_e Σ_E c cᵀ + s_p M_P + λ I)⁻¹

with M_P = Σ_P c cᵀ (from explicit keys, or a second-moment matrix estimated from data).
Targets are the anchor's output W_old c_anchor (erase "X" → behave like "Y") or a neutral
input's output; the bias is untouched, so it cancels from both sides. Solved in float64.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Annotated

import torch
from torch import nn

from erasekit.core.errors import ConceptError
from erasekit.core.params import NON_NEGATIVE, POSITIVE, Params


@dataclass(frozen=True)
class LinearEditParams(Params):
    """λ 0.5 and s_e = s_p = 1 are the UCE defaults. ``rece_iterations`` > 0 adds RECE's
    adversarial keys (λ_reg 0.1); ``neighbors`` > 0 adds that many random perturbations of
    each erase key (relative size ``neighbor_scale``) to the erase set (RealEra)."""

    lam: Annotated[float, NON_NEGATIVE] = 0.5
    erase_scale: Annotated[float, NON_NEGATIVE] = 1.0
    preserve_scale: Annotated[float, NON_NEGATIVE] = 1.0
    rece_iterations: Annotated[int, NON_NEGATIVE] = 0
    rece_lambda: Annotated[float, POSITIVE] = 0.1
    neighbors: Annotated[int, NON_NEGATIVE] = 0
    neighbor_scale: Annotated[float, NON_NEGATIVE] = 0.05
    seed: int = 0


@dataclass(frozen=True)
class LinearEdit:
    """The change to one layer's weight. ``apply``/``undo`` add/subtract it in place."""

    layer: str
    delta_weight: torch.Tensor  # [out_features, in_features], float64
    condition_number: float  # of the d_in × d_in system solved
    erase_keys: int  # number of keys in the erase set (after RECE/neighbour expansion)
    preserve_keys: int  # explicit preserve keys (0 when a second-moment matrix was given)

    def apply(self, layer: nn.Linear) -> None:
        with torch.no_grad():
            layer.weight += self.delta_weight.to(device=layer.weight.device, dtype=layer.weight.dtype)

    def undo(self, layer: nn.Linear) -> None:
        with torch.no_grad():
            layer.weight -= self.delta_weight.to(device=layer.weight.device, dtype=layer.weight.dtype)


@dataclass(frozen=True)
class LinearEditResult:
    """Edits of several layers that read the same input (e.g. q/k/v projections)."""

    edits: dict[str, LinearEdit] = field(default_factory=dict)

    def apply(self, layers: Mapping[str, nn.Linear]) -> None:
        for name, edit in self.edits.items():
            edit.apply(layers[name])

    def undo(self, layers: Mapping[str, nn.Linear]) -> None:
        for name, edit in self.edits.items():
            edit.undo(layers[name])

    @contextmanager
    def applied(self, layers: Mapping[str, nn.Linear]) -> Iterator[None]:
        self.apply(layers)
        try:
            yield
        finally:
            self.undo(layers)


def _as_keys(keys, width: int, what: str, device: torch.device) -> torch.Tensor:
    tensor = torch.as_tensor(keys, dtype=torch.float64, device=device) if not torch.is_tensor(keys) else keys.detach()
    tensor = tensor.to(device=device, dtype=torch.float64)
    if tensor.ndim == 1:
        tensor = tensor[None]
    if tensor.ndim != 2 or tensor.shape[1] != width:
        raise ConceptError(f"{what} must have shape [n, {width}] (the layer's input width), got {tuple(tensor.shape)}")
    if not torch.isfinite(tensor).all():
        raise ConceptError(f"{what} contain NaN or inf")
    return tensor


def _check_linear(name: str, layer) -> nn.Linear:
    if not isinstance(layer, nn.Linear):
        raise ConceptError(
            f"layer '{name}' is a {type(layer).__name__}, not nn.Linear; the closed-form edit applies to linear layers only"
        )
    return layer


def _solve(weight, erase_keys, targets, preserve_moment, params: LinearEditParams) -> tuple[torch.Tensor, float]:
    d_in = weight.shape[1]
    eye = torch.eye(d_in, dtype=torch.float64, device=weight.device)
    lhs = params.erase_scale * erase_keys.T @ erase_keys + params.preserve_scale * preserve_moment + params.lam * eye
    rhs = params.erase_scale * targets.T @ erase_keys + params.preserve_scale * weight @ preserve_moment + params.lam * weight
    if params.lam == 0 and torch.linalg.matrix_rank(lhs) < d_in:
        raise ConceptError(
            "the edit system is singular: with lam = 0 the erase and preserve keys must span the input space; use lam > 0"
        )
    new_weight = torch.linalg.solve(lhs, rhs.T).T  # lhs is symmetric
    return new_weight, float(torch.linalg.cond(lhs))


def _neighbours(keys: torch.Tensor, count: int, scale: float, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(len(keys), count, keys.shape[1], generator=generator, dtype=torch.float64).to(keys.device)
    noise = noise / noise.norm(dim=-1, keepdim=True) * keys.norm(dim=-1, keepdim=True)[:, None] * scale
    return (keys[:, None] + noise).reshape(-1, keys.shape[1])


def edit_linear(
    layers: Mapping[str, nn.Linear] | nn.Linear,
    erase_keys,
    anchor_keys=None,
    targets: Mapping[str, torch.Tensor] | torch.Tensor | None = None,
    preserve_keys=None,
    preserve_moment=None,
    params: LinearEditParams = LinearEditParams(),
) -> LinearEditResult:
    """Compute (not apply) closed-form edits so ``erase_keys`` map like ``anchor_keys``.

    ``layers``: one ``nn.Linear`` or a name → layer mapping of layers sharing the same input.
    ``anchor_keys`` ``[n_e, d_in]`` (or one row for all): targets are the *original* outputs
    W_old·c_anchor — an anchor concept, or a neutral input. Alternatively give ``targets``
    directly (``[n_e, d_out]`` per layer, excluding the bias). Preserve with explicit
    ``preserve_keys`` ``[n_p, d_in]`` and/or a ``preserve_moment`` Σ c cᵀ ``[d_in, d_in]``.
    Returns per-layer weight deltas; call ``.apply(layers)`` (and ``.undo``) to use them.
    """
    named = {"layer": layers} if isinstance(layers, nn.Module) else dict(layers)
    if not named:
        raise ConceptError("no layers given to edit")
    named = {name: _check_linear(name, layer) for name, layer in named.items()}
    widths = {layer.in_features for layer in named.values()}
    if len(widths) != 1:
        raise ConceptError(f"layers edited together must share their input width, got {sorted(widths)}")
    d_in = widths.pop()
    device = next(iter(named.values())).weight.device  # the system is solved where the layers are
    keys = _as_keys(erase_keys, d_in, "erase keys", device)
    if (anchor_keys is None) == (targets is None):
        raise ConceptError("give exactly one of anchor_keys (anchor/neutral inputs) or targets")
    anchors = None
    if anchor_keys is not None:
        anchors = _as_keys(anchor_keys, d_in, "anchor keys", device)
        if len(anchors) == 1:
            anchors = anchors.expand(len(keys), -1)
        if len(anchors) != len(keys):
            raise ConceptError(f"{len(keys)} erase keys but {len(anchors)} anchor keys; give one anchor per key or a single one")
    moment = torch.zeros(d_in, d_in, dtype=torch.float64, device=device)
    preserve_count = 0
    if preserve_keys is not None:
        kept = _as_keys(preserve_keys, d_in, "preserve keys", device)
        moment = moment + kept.T @ kept
        preserve_count = len(kept)
    if preserve_moment is not None:
        given = torch.as_tensor(preserve_moment, dtype=torch.float64, device=device)
        if given.shape != (d_in, d_in):
            raise ConceptError(f"preserve_moment must be [{d_in}, {d_in}], got {tuple(given.shape)}")
        moment = moment + given

    weights = {name: layer.weight.detach().to(device=device, dtype=torch.float64) for name, layer in named.items()}
    base_keys = keys
    if params.neighbors:
        extra = _neighbours(base_keys, params.neighbors, params.neighbor_scale, params.seed)
        keys = torch.cat([keys, extra])
        if anchors is not None:
            anchors = torch.cat([anchors, anchors.repeat_interleave(params.neighbors, dim=0)])

    def targets_for(name: str, key_anchors) -> torch.Tensor:
        if key_anchors is not None:
            return key_anchors @ weights[name].T
        given = targets[name] if isinstance(targets, Mapping) else targets
        value = torch.as_tensor(given, dtype=torch.float64, device=device)
        return value if len(value) == len(keys) else value.expand(len(keys), -1)

    solved = {name: _solve(weights[name], keys, targets_for(name, anchors), moment, params) for name in named}
    for _ in range(params.rece_iterations):
        # RECE: the input that makes the edited layers reproduce the original outputs for each
        # concept, c′ = (Σ W′ᵀW′ + λ_reg I)⁻¹ (Σ W′ᵀ W) c, is erased as well
        gram = torch.stack([w.T @ w for w, _ in solved.values()]).sum(0) + params.rece_lambda * torch.eye(
            d_in, dtype=torch.float64, device=device
        )
        cross = torch.stack([solved[name][0].T @ weights[name] for name in named]).sum(0)
        adversarial = torch.linalg.solve(gram, cross @ base_keys.T).T
        keys = torch.cat([keys, adversarial])
        if anchors is not None:
            anchors = torch.cat([anchors, anchors[: len(base_keys)]])
        solved = {name: _solve(weights[name], keys, targets_for(name, anchors), moment, params) for name in named}

    edits = {
        name: LinearEdit(name, new_weight - weights[name], condition, len(keys), preserve_count)
        for name, (new_weight, condition) in solved.items()
    }
    return LinearEditResult(edits)
