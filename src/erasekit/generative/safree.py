"""SAFREE — training-free concept guard (Yoon et al., "SAFREE: Training-Free and Adaptive Guard for Safe
Text-to-Image and Video Generation", ICLR 2025).

No weight changes: the text states are filtered at inference.

1. **Toxic subspace.** The pooled states of the concept's prompts span ``C``;
   ``P_C = C(CᵀC)⁺Cᵀ``.
2. **Trigger tokens.** For each token i, the pooled state of the prompt without it, ``m_i``, and
   ``d_i = ‖(I − P_C) m_i‖``. Token i is a trigger iff ``d_i ≥ (1 + α)·mean_{j≠i} d_j``:
   removing it moves the prompt away from the concept.
3. **Projection.** With ``P_M = M(MᵀM)⁺Mᵀ`` over the ``m_i``, every trigger token's state becomes
   ``(I − P_C) P_M e_i``; the other tokens are unchanged.
4. **Self-validating filter.** ``β = 1 − mean_i cos((I − P_C) P_M e_i, e_i)``;
   ``t' = round(10·σ(2k(10β − t₀)))``. The projected states are used for the first ``t'`` of 50
   denoising steps (as a share of the schedule), the original states afterwards.

Adaptation, stated: the paper re-encodes each prompt with token i masked to get ``m_i``; a
guard that sees only token states uses the leave-one-out mean of the states instead (the
testbed's MiniLM is mean-pooled). The released scripts also pass the keywords as a negative prompt
and register a Fourier "latent re-attention" filter that, as released, does nothing; neither is
done here, so what is measured is SAFREE's projection alone. The empty prompt (the unconditional
branch) is never filtered.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import torch
from torch import nn

from erasekit.core.params import NON_NEGATIVE, POSITIVE, Params
from erasekit.generative.base import ConceptRequest, copy_unet, register_diffusion_method
from erasekit.models.diffusion_testbed import DiffusionModel


@dataclass(frozen=True)
class SAFREEParams(Params):
    """The authors' defaults: α 0.01; the self-validating filter's (k, t₀) = (2.5, 5.333) as for nudity; at most 10 of
    50 steps filtered."""

    alpha: Annotated[float, NON_NEGATIVE] = 0.01
    svf_k: Annotated[float, POSITIVE] = 2.5
    svf_t0: Annotated[float, NON_NEGATIVE] = 5.333
    svf_max_steps: Annotated[int, NON_NEGATIVE] = 10


def projector(columns: torch.Tensor) -> torch.Tensor:
    """``P = C(CᵀC)⁺Cᵀ`` for the columns of ``C [d, k]`` (float64)."""
    c = columns.double()
    return c @ torch.linalg.pinv(c.T @ c) @ c.T


class GuardedUNet(nn.Module):
    """The UNet behind SAFREE's text-state filter; called like a ``UNet2DConditionModel``."""

    concept_projector: torch.Tensor  # buffers
    empty: torch.Tensor

    def __init__(self, unet: nn.Module, concept_projector: torch.Tensor, empty: torch.Tensor, params: SAFREEParams, prompts=()):
        super().__init__()
        self.unet = unet
        self.prompts = tuple(prompts)  # the concept's prompts behind the projector (saved with the testbed)
        self.config = unet.config
        self.params = params
        self.register_buffer("concept_projector", concept_projector)
        self.register_buffer("empty", empty)
        self._cached: tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] | None = None

    def cached_filter(self, states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """:meth:`filter`, computed once per context: a sampler passes the same states at every denoising step, and the
        filter (a batched pseudo-inverse) costs more than the check."""
        if self._cached is not None:
            seen, result = self._cached
            if seen.shape == states.shape and seen.device == states.device and torch.equal(seen, states):
                return result
        result = self.filter(states)
        self._cached = (states.detach().clone(), result)
        return result

    @torch.no_grad()
    def filter(self, states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``states [n, L, d]`` → (filtered states, trigger mask ``[n, L]``, steps to filter out of 50 ``[n]``)."""
        e = states.double()
        _, length, d = e.shape
        outside = torch.eye(d, dtype=torch.float64, device=e.device) - self.concept_projector.to(e.device)
        masked = (e.sum(1, keepdim=True) - e) / (length - 1)  # m_i: the pooled state without token i
        distance = (masked @ outside).norm(dim=-1)  # d_i = ‖(I − P_C) m_i‖ (P_C is symmetric)
        others = (distance.sum(1, keepdim=True) - distance) / (length - 1)
        triggers = distance >= (1 + self.params.alpha) * others
        # (I − P_C) P_M e_i with P_M = M(MᵀM)⁺Mᵀ over each prompt's own m_j, batched over prompts
        gram_inverse = torch.linalg.pinv(masked @ masked.transpose(1, 2))
        projected = e @ masked.transpose(1, 2) @ gram_inverse @ masked @ outside
        cosine = torch.nn.functional.cosine_similarity(projected, e, dim=-1).mean(1)
        beta = 1 - cosine
        steps = torch.round(self.params.svf_max_steps * torch.sigmoid(2 * self.params.svf_k * (10 * beta - self.params.svf_t0)))
        is_empty = (states.float() - self.empty.to(states.device)).abs().flatten(1).amax(1) <= 1e-5
        triggers &= ~is_empty[:, None]
        steps[is_empty] = 0
        filtered = torch.where(triggers[..., None], projected, e).to(states.dtype)
        return filtered, triggers, steps

    def merged(self) -> nn.Module:
        """The UNet without the guard (SAFREE changes no weights)."""
        return self.unet

    def forward(self, sample, timestep, encoder_hidden_states, **kwargs):
        filtered, _, steps = self.cached_filter(encoder_hidden_states)
        t = float(timestep.flatten()[0]) if torch.is_tensor(timestep) else float(timestep)
        progress = (1000 - t) / 1000  # share of the schedule already denoised
        early = (progress <= steps / 50 - 1e-9).to(filtered.device)  # the first t' of 50 steps
        states = torch.where(early[:, None, None], filtered, encoder_hidden_states)
        return self.unet(sample, timestep, encoder_hidden_states=states, **kwargs)


@register_diffusion_method("safree", SAFREEParams)
def safree(model: DiffusionModel, request: ConceptRequest, params: SAFREEParams):
    """SAFREE: project the concept's trigger tokens out of the prompt at inference (no weights change)."""
    pooled = model.encode(list(request.erase_prompts)).double().mean(1)  # [K, d]
    return GuardedUNet(copy_unet(model), projector(pooled.T).float(), model.encode([""])[0], params, request.erase_prompts)
