"""RealEra — erasure with neighbour-concept mining (Liu et al., "RealEra: Semantic-level Concept Erasure via
Neighbor-Concept Mining", arXiv 2410.09140, 2024).

A concept leaves a residue: phrasings and associated embeddings near it still recall it. RealEra
erases a neighbourhood instead of a point and protects what lies beyond it:

1. **Mining.** Neighbours ``e' = e + η`` of every erased token state ``e`` with ``η ⟂ e`` scaled
   so that ``cos(e, e') ∈ [S₁, S₂]``; beyond-concept samples the same way with
   ``cos ∈ [B₁, B₂]`` (farther out).
2. **Closed-form alignment.** The UCE form on every ``attn2.to_k`` / ``to_v``: keys ``{e, e'}``
   map to the anchor's values ``W₀ c_anchor``; the preserved prompts, ``""`` and the
   beyond-concept samples keep their values.
3. **Noise alignment.** A LoRA on the cross-attention projections, trained from the edited
   weights with ``‖ε_{θ+Δ}(x_t, {e, e'}) − ε_θ₀(x_t, c_anchor)‖² + ‖ε_{θ+Δ}(x_t, e'') − ε_θ₀(x_t, e'')‖²``
   and fused into the returned UNet.

The authors' code is not public; the neighbourhood radii, sample counts and LoRA settings
below are this implementation's choices (documented in :class:`RealEraParams`), not the paper's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import torch
import torch.nn.functional as F

from erasekit.core import progress, rng
from erasekit.core.errors import MethodError
from erasekit.core.extras import require
from erasekit.core.params import AT_LEAST_ONE, NON_NEGATIVE, OPEN_FRACTION, POSITIVE, Params
from erasekit.generative.base import (
    ConceptRequest,
    copy_unet,
    cross_attention_projections,
    register_diffusion_method,
    training_states,
)
from erasekit.generative.uce import closed_form_edit, guided_targets, token_states
from erasekit.models.diffusion_testbed import DiffusionModel


@dataclass(frozen=True)
class RealEraParams(Params):
    """Not from the paper (its values are unpublished): 4 neighbours per erased prompt at cosine 0.85–0.95 to it,
    4 beyond-concept samples at cosine 0.5–0.8, UCE's weights (erase 1, preserve 1, λ 0.5) for the closed form, then
    50 LoRA steps (rank 4, lr 1e-3, 4 prompts per step) of noise alignment; ``lora_iterations`` 0 stops after the
    closed form."""

    neighbours: Annotated[int, AT_LEAST_ONE] = 4
    neighbour_cosine_low: Annotated[float, OPEN_FRACTION] = 0.85
    neighbour_cosine_high: Annotated[float, OPEN_FRACTION] = 0.95
    beyond: Annotated[int, NON_NEGATIVE] = 4
    beyond_cosine_low: Annotated[float, OPEN_FRACTION] = 0.5
    beyond_cosine_high: Annotated[float, OPEN_FRACTION] = 0.8
    erase_scale: Annotated[float, POSITIVE] = 1.0
    preserve_scale: Annotated[float, NON_NEGATIVE] = 1.0
    lamb: Annotated[float, POSITIVE] = 0.5
    lora_iterations: Annotated[int, NON_NEGATIVE] = 50
    # erasekit's option (see UCEParams): values aimed past the anchor, and the noise target ε(anchor) − η(ε(c) − ε(anchor))
    negative_guidance: Annotated[float, NON_NEGATIVE] = 0.0
    lora_rank: Annotated[int, AT_LEAST_ONE] = 4
    lr: Annotated[float, POSITIVE] = 1e-3
    batch_size: Annotated[int, AT_LEAST_ONE] = 4
    seed: int = 0

    def __post_init__(self):
        super().__post_init__()
        if not self.neighbour_cosine_low <= self.neighbour_cosine_high:
            raise MethodError("neighbour_cosine_low must not exceed neighbour_cosine_high")
        if not self.beyond_cosine_low <= self.beyond_cosine_high < self.neighbour_cosine_low:
            raise MethodError("the beyond-concept cosines must be ordered and below neighbour_cosine_low (they lie farther out)")


def perturb(states: torch.Tensor, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    """One perturbed copy of ``states [..., d]``: each row moved orthogonally to itself so that its cosine to the
    original is drawn uniformly from [low, high] (norm grows to ‖e‖/cos)."""
    rows = states.reshape(-1, states.shape[-1]).double()
    noise = torch.randn(rows.shape, generator=generator, dtype=torch.float64).to(rows.device)
    unit = F.normalize(rows, dim=1)
    orthogonal = F.normalize(noise - (noise * unit).sum(1, keepdim=True) * unit, dim=1)
    cosine = low + (high - low) * torch.rand(len(rows), 1, generator=generator, dtype=torch.float64).to(rows.device)
    length = rows.norm(dim=1, keepdim=True) * torch.sqrt(1 / cosine**2 - 1)  # ‖η‖ for cos(e, e + η) = cosine
    return (rows + length * orthogonal).reshape(states.shape).to(states.dtype)


def mine(states: torch.Tensor, count: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    """``count`` perturbed copies of every sequence in ``states [n, L, d]`` → ``[n·count, L, d]``."""
    if count == 0:
        return states[:0]
    return torch.cat([perturb(states, low, high, generator) for _ in range(count)])


@register_diffusion_method("realera", RealEraParams)
def realera(model: DiffusionModel, request: ConceptRequest, params: RealEraParams):
    """RealEra: erase the concept and its mined neighbours in closed form, protect beyond-concept samples, then align noise."""
    generator = rng.generator(params.seed)
    concept = model.encode(list(request.erase_prompts))
    neighbours = mine(concept, params.neighbours, params.neighbour_cosine_low, params.neighbour_cosine_high, generator)
    beyond = mine(concept, params.beyond, params.beyond_cosine_low, params.beyond_cosine_high, generator)
    anchor = model.encode([request.guide_prompt])

    unet = copy_unet(model)
    erase_keys = torch.cat([token_states(model, request.erase_prompts), neighbours.reshape(-1, concept.shape[-1]).double()])
    anchor_keys = anchor.expand(len(request.erase_prompts) + len(neighbours), -1, -1).reshape(-1, anchor.shape[-1]).double()
    preserve_keys = torch.cat(
        [token_states(model, (*request.preserve_prompts, "")), beyond.reshape(-1, concept.shape[-1]).double()]
    )
    anchor_values = guided_targets(erase_keys, anchor_keys, params.negative_guidance)
    for name, linear in cross_attention_projections(unet):
        weight = linear.weight.data
        linear.weight.data = closed_form_edit(
            weight,
            erase_keys,
            (anchor_values if name.endswith("to_v") else anchor_keys) @ weight.double().T,
            preserve_keys,
            params.erase_scale,
            params.preserve_scale,
            params.lamb,
        )
    if params.lora_iterations:
        unet = _align_noise(model, unet, concept, anchor, params, generator)
    return unet


def _align_noise(model, unet, concept, anchor, params: RealEraParams, generator: torch.Generator):
    """Stage 2: a LoRA on ``attn2.to_k/to_v`` from the closed-form weights, fused into the returned UNet."""
    peft = require("peft", "RealEra's noise alignment")
    frozen = model.unet
    unet.add_adapter(
        peft.LoraConfig(r=params.lora_rank, lora_alpha=params.lora_rank, target_modules=r".*attn2\.(to_k|to_v)"),
        adapter_name="realera",
    )
    optimiser = torch.optim.Adam([p for p in unet.parameters() if p.requires_grad], lr=params.lr)
    with progress.step("realera", params.lora_iterations) as advance:
        for _ in range(params.lora_iterations):
            chosen = torch.randint(0, len(concept), (params.batch_size,), generator=generator)
            picked = concept[chosen]
            near = perturb(picked, params.neighbour_cosine_low, params.neighbour_cosine_high, generator)
            far = perturb(picked, params.beyond_cosine_low, params.beyond_cosine_high, generator)
            with torch.no_grad():
                x_t, t = training_states(model, frozen, picked, model.guidance, generator)
                erase_target = frozen(x_t, t, encoder_hidden_states=anchor.expand(len(picked), -1, -1)).sample
                if params.negative_guidance:
                    concept_noise = frozen(x_t, t, encoder_hidden_states=picked).sample
                    erase_target = erase_target - params.negative_guidance * (concept_noise - erase_target)
                keep_target = frozen(x_t, t, encoder_hidden_states=far).sample
            # the concept itself and its neighbours both go to the anchor's prediction
            both = torch.cat([picked, near])
            loss = F.mse_loss(unet(torch.cat([x_t, x_t]), t, encoder_hidden_states=both).sample, torch.cat([erase_target] * 2))
            if params.beyond:
                loss = loss + F.mse_loss(unet(x_t, t, encoder_hidden_states=far).sample, keep_target)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            advance(1)
    unet.fuse_lora(lora_scale=1.0)
    unet.unload_lora()
    return unet.eval().requires_grad_(False)
