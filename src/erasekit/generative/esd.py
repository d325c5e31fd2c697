"""ESD — Erasing Concepts from Diffusion Models (Gandikota et al., ICCV 2023): ESD-x and ESD-u.

Fine-tune θ so that its conditional prediction for the concept points away from it:
``L = ‖ε_θ(x_t, c) − ε*‖²`` with ``ε* = ε_θ₀(x_t, ∅) − η(ε_θ₀(x_t, c) − ε_θ₀(x_t, ∅))`` from a
frozen copy θ₀. No data: ``x_t`` is the state after ``k ~ U{0..K−1}`` DDIM steps of the frozen
model from noise with guidance on the concept prompt, at the matching timestep. ESD-x trains
the cross-attention (``attn2``) parameters — local to prompts that mention the concept; ESD-u
trains every other parameter — global.

``preserve_weight`` w > 0 (erasekit's option, not the paper's; default 0) adds a retain term in
the manner of AdvUnlearn's utility loss (Zhang et al., NeurIPS 2024) and DoCo's prior preservation:
``w·‖ε_θ(x_p, c_p) − ε_θ₀(x_p, c_p)‖²`` for preserved prompts ``c_p`` (and ``""``) at states ``x_p``
drawn the same data-free way from their own trajectories. Without it the edit bleeds into
concepts that share the erased one's words or shapes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import torch
import torch.nn.functional as F

from erasekit.core import progress, rng
from erasekit.core.params import AT_LEAST_ONE, NON_NEGATIVE, POSITIVE, Params
from erasekit.generative.base import ConceptRequest, copy_unet, register_diffusion_method, training_states
from erasekit.models.diffusion_testbed import DiffusionModel


@dataclass(frozen=True)
class ESDParams(Params):
    """η = 1 (negative guidance; the original script's value — the diffusers script's default η = 2 is the same target
    written differently), Adam. The paper used 1000 iterations at lr 1e-5 with batch 1 on SD1.4; this model is
    10⁴ times smaller, so the defaults take 200 iterations at lr 1e-3 with 4 prompts per iteration. ``trajectory_guidance``
    None uses the model's sampling guidance (the paper: 3). ``preserve_weight`` 0 is the paper's loss; w > 0 adds the
    retain term on as many preserved prompts per iteration as erased ones (twice the cost per iteration)."""

    iterations: Annotated[int, AT_LEAST_ONE] = 200
    lr: Annotated[float, POSITIVE] = 1e-3
    negative_guidance: Annotated[float, NON_NEGATIVE] = 1.0
    batch_size: Annotated[int, AT_LEAST_ONE] = 4
    trajectory_guidance: float | None = None
    preserve_weight: Annotated[float, NON_NEGATIVE] = 0.0
    seed: int = 0


def trainable(unet, cross_attention: bool) -> list[torch.nn.Parameter]:
    chosen = []
    for name, parameter in unet.named_parameters():
        inside = ".attn2." in name
        if inside == cross_attention:
            parameter.requires_grad_(True)
            chosen.append(parameter)
    return chosen


def _esd(model: DiffusionModel, request: ConceptRequest, params: ESDParams, cross_attention: bool, label: str):
    frozen = model.unet
    unet = copy_unet(model)
    unet.train()
    optimiser = torch.optim.Adam(trainable(unet, cross_attention), lr=params.lr)
    generator = rng.generator(params.seed)
    guidance = params.trajectory_guidance or model.guidance
    prompts = list(request.erase_prompts)
    kept = [*request.preserve_prompts, ""]
    uncond = model.encode([""])

    @torch.no_grad()
    def draw(pool: list[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """A batch of prompts from ``pool``, their text states and data-free training states (x_t, t)."""
        chosen = torch.randint(0, len(pool), (params.batch_size,), generator=generator)
        cond = model.encode([pool[int(i)] for i in chosen])
        return (cond, *training_states(model, frozen, cond, guidance, generator))

    with progress.step(label, params.iterations) as advance:
        for _ in range(params.iterations):
            cond, x_t, t = draw(prompts)
            with torch.no_grad():
                eps_uncond = frozen(x_t, t, encoder_hidden_states=uncond.expand(len(cond), -1, -1)).sample
                eps_cond = frozen(x_t, t, encoder_hidden_states=cond).sample
                target = eps_uncond - params.negative_guidance * (eps_cond - eps_uncond)
            loss = F.mse_loss(unet(x_t, t, encoder_hidden_states=cond).sample, target)
            if params.preserve_weight > 0:
                kept_cond, x_p, t_p = draw(kept)
                with torch.no_grad():
                    kept_target = frozen(x_p, t_p, encoder_hidden_states=kept_cond).sample
                kept_prediction = unet(x_p, t_p, encoder_hidden_states=kept_cond).sample
                loss = loss + params.preserve_weight * F.mse_loss(kept_prediction, kept_target)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            advance(1)
    unet.eval().requires_grad_(False)
    return unet


@register_diffusion_method("esd_x", ESDParams)
def esd_x(model: DiffusionModel, request: ConceptRequest, params: ESDParams):
    """ESD-x: fine-tune the cross-attention layers so the concept's prompts steer away from it (local to those prompts)."""
    return _esd(model, request, params, cross_attention=True, label="esd-x")


@register_diffusion_method("esd_u", ESDParams)
def esd_u(model: DiffusionModel, request: ConceptRequest, params: ESDParams):
    """ESD-u: fine-tune every layer outside cross-attention (a global erasure)."""
    return _esd(model, request, params, cross_attention=False, label="esd-u")
