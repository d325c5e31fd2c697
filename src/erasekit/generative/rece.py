"""RECE — Reliable and Efficient Concept Erasure (Gong et al., ECCV 2024): UCE, then erase the embeddings that still
bring the concept back, in closed form, for a few epochs.

After an edit, the text states ``c'`` that make the *edited* cross-attention reproduce what the
*original* produced for the concept solve
``c' = argmin_c Σ_l ‖W_l c − W_l⁰ c_e‖² + λ_r‖c‖² = (Σ_l W_lᵀW_l + λ_r I)⁻¹ (Σ_l W_lᵀW_l⁰) c_e``
over every key/value projection ``l``, row by row over the concept prompt's tokens. Those
``c'`` are then erased too (the UCE form, toward the guide's values under the current weights,
regularised toward the current weights).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import torch

from erasekit.core.params import AT_LEAST_ONE, NON_NEGATIVE, POSITIVE, Params
from erasekit.generative.base import ConceptRequest, cross_attention_projections, register_diffusion_method
from erasekit.generative.uce import UCEParams, closed_form_edit, guide_states, guided_targets, token_states, uce
from erasekit.models.diffusion_testbed import DiffusionModel


@dataclass(frozen=True)
class RECEParams(Params):
    """Defaults from the authors' code: λ_r (``embedding_reg``) 0.1 for objects, erase 1, preserve 0.1, λ 0.1 toward
    the current weights; the first edit is UCE with its own defaults. Epochs: 1 for objects in the paper, 3 for nudity;
    2 here."""

    epochs: Annotated[int, AT_LEAST_ONE] = 2
    embedding_reg: Annotated[float, POSITIVE] = 0.1
    erase_scale: Annotated[float, POSITIVE] = 1.0
    preserve_scale: Annotated[float, NON_NEGATIVE] = 0.1
    lamb: Annotated[float, POSITIVE] = 0.1
    negative_guidance: Annotated[float, NON_NEGATIVE] = 0.0  # erasekit's option (see UCEParams), for both stages


@torch.no_grad()
def adversarial_states(unet, original_unet, concept_rows: torch.Tensor, reg: float) -> torch.Tensor:
    """RECE's closed-form ``c'`` (rows ``[n, d]``, float64) for the concept's token states under the current edit."""
    current = dict(cross_attention_projections(unet))
    original = dict(cross_attention_projections(original_unet))
    d = concept_rows.shape[1]
    gram = reg * torch.eye(d, dtype=torch.float64, device=concept_rows.device)
    cross = torch.zeros(d, d, dtype=torch.float64, device=concept_rows.device)
    for name, linear in current.items():
        w, w0 = linear.weight.double(), original[name].weight.double()
        gram += w.T @ w
        cross += w.T @ w0
    return torch.linalg.solve(gram, cross @ concept_rows.T).T


@register_diffusion_method("rece", RECEParams, closed_form=True)
def rece(model: DiffusionModel, request: ConceptRequest, params: RECEParams):
    """RECE: UCE, then repeatedly erase the closed-form embeddings that would still recall the concept."""
    unet = uce(model, request, UCEParams(negative_guidance=params.negative_guidance))
    concept_rows = token_states(model, request.erase_prompts)
    guide_rows = guide_states(model, request)
    guide_value_rows = guided_targets(concept_rows, guide_rows, params.negative_guidance)
    preserve_rows = token_states(model, (*request.preserve_prompts, ""))
    for _ in range(params.epochs):
        adversarial = adversarial_states(unet, model.unet, concept_rows, params.embedding_reg)
        for name, linear in cross_attention_projections(unet):
            weight = linear.weight.data
            rows = guide_value_rows if name.endswith("to_v") else guide_rows
            targets = rows @ weight.double().T  # the guide's values under the current edit
            linear.weight.data = closed_form_edit(
                weight, adversarial, targets, preserve_rows, params.erase_scale, params.preserve_scale, params.lamb
            )
    return unet
