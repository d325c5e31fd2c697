"""UCE — Unified Concept Editing (Gandikota et al., "Unified Concept Editing in Diffusion Models", WACV 2024).

One closed form per cross-attention projection ``W`` (every ``attn2.to_k`` and ``attn2.to_v``):
``W = (λW₀ + s_e Σ_i v*_i c_iᵀ + s_p Σ_j W₀ c_j c_jᵀ)(λI + s_e Σ_i c_i c_iᵀ + s_p Σ_j c_j c_jᵀ)⁻¹``,
which minimises ``s_e Σ‖Wc_i − v*_i‖² + s_p Σ‖Wc_j − W₀c_j‖² + λ‖W − W₀‖²_F``: the text
states ``c_i`` of the erased prompts are sent to the values ``v*_i = W₀ g_i`` of the guide prompt
(``""``, the unconditional branch) while the preserved prompts' values stay as they were.

Mapping a concept onto the unconditional branch makes its prompts draw what the model draws
unprompted, and that includes the concept at its base rate (a tenth of the testbed's unprompted
samples are sevens). ``negative_guidance`` η > 0 — erasekit's option, not the paper's — aims past
the guide instead: ``v* = W₀(g − η(c_i − g))``, the value-space analogue of ESD's negatively guided
target (keys still go to the guide's, keeping its attention pattern), so that classifier-free guidance steers the erased prompts away from the concept.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import torch

from erasekit.core.params import NON_NEGATIVE, POSITIVE, Params
from erasekit.generative.base import ConceptRequest, copy_unet, cross_attention_projections, register_diffusion_method
from erasekit.models.diffusion_testbed import DiffusionModel


@dataclass(frozen=True)
class UCEParams(Params):
    """Defaults from the authors' current code: erase_scale 1, preserve_scale 1, lamb 0.5.

    Every token position of each prompt is a key, aligned with the same position of the guide
    prompt. The authors' old code also edited every token from the concept word through the
    padding; their current code edits only the last word token, which suits CLIP's causal
    encoder. A bidirectional encoder such as the testbed's MiniLM spreads the concept over every
    position (no attention mask is passed to the UNet), so all positions are edited.
    """

    erase_scale: Annotated[float, POSITIVE] = 1.0
    preserve_scale: Annotated[float, NON_NEGATIVE] = 1.0
    lamb: Annotated[float, POSITIVE] = 0.5
    negative_guidance: Annotated[float, NON_NEGATIVE] = 0.0


def guided_targets(erase_rows: torch.Tensor, guide_rows: torch.Tensor, negative_guidance: float) -> torch.Tensor:
    """The text states whose values the erased rows should take: the guide's, or past it away from the concept (η > 0)."""
    return guide_rows - negative_guidance * (erase_rows - guide_rows)


def token_states(model: DiffusionModel, prompts) -> torch.Tensor:
    """All token states of ``prompts``, flattened to rows ``[n·L, d]``, in float64."""
    states = model.encode(list(prompts))
    return states.reshape(-1, states.shape[-1]).double()


@torch.no_grad()
def closed_form_edit(
    weight: torch.Tensor,
    erase_keys: torch.Tensor,
    erase_values: torch.Tensor,
    preserve_keys: torch.Tensor,
    erase_scale: float,
    preserve_scale: float,
    lamb: float,
    anchor: torch.Tensor | None = None,
) -> torch.Tensor:
    """The UCE form for one ``[out, d]`` matrix (float64 inside). ``anchor`` is the matrix the λ term and the preserved
    values refer to (default ``weight``; RECE regularises toward the current edit)."""
    w = weight.double()
    anchor = w if anchor is None else anchor.double()
    d = w.shape[1]
    left = lamb * anchor + erase_scale * erase_values.T @ erase_keys
    right = lamb * torch.eye(d, dtype=torch.float64, device=w.device) + erase_scale * erase_keys.T @ erase_keys
    if len(preserve_keys):
        left = left + preserve_scale * (anchor @ preserve_keys.T) @ preserve_keys
        right = right + preserve_scale * preserve_keys.T @ preserve_keys
    # W = left · right⁻¹ with right symmetric positive definite: solve rightᵀ Wᵀ = leftᵀ
    return torch.linalg.solve(right, left.T).T.to(weight.dtype)


def guide_states(model: DiffusionModel, request: ConceptRequest) -> torch.Tensor:
    """The guide prompt's token states repeated for every erased prompt (aligned by position)."""
    guide = model.encode([request.guide_prompt])
    return guide.expand(len(request.erase_prompts), -1, -1).reshape(-1, guide.shape[-1]).double()


@register_diffusion_method("uce", UCEParams, closed_form=True)
def uce(model: DiffusionModel, request: ConceptRequest, params: UCEParams):
    """UCE: closed-form edit of every cross-attention key/value projection, erased prompts → the guide's values."""
    unet = copy_unet(model)
    erase_keys = token_states(model, request.erase_prompts)
    guide_keys = guide_states(model, request)
    guide_values = guided_targets(erase_keys, guide_keys, params.negative_guidance)
    preserve_keys = token_states(model, (*request.preserve_prompts, ""))
    for name, linear in cross_attention_projections(unet):
        weight = linear.weight.data
        # keys go to the guide's (the unconditional attention pattern); only values are pushed past it (η > 0)
        rows = guide_values if name.endswith("to_v") else guide_keys
        targets = rows @ weight.double().T  # v* = W₀ g (η = 0)
        linear.weight.data = closed_form_edit(
            weight, erase_keys, targets, preserve_keys, params.erase_scale, params.preserve_scale, params.lamb
        )
    return unet
