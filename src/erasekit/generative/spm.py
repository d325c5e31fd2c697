"""SPM — concept Semi-Permeable Membrane (Lyu et al., "One-dimensional Adapter to Rule Them All: Concepts, Diffusion
Models and Erasing Applications", CVPR 2024).

A rank-1 LoRA adapter ("membrane", ``W x + (α/r)·U D x`` with r = α = 1, U = 0 at the start) on
every Linear and 1×1 Conv inside each transformer block of the UNet, trained with
``L = ‖ε_{θ+Δ}(x_t, c) − [ε_θ(x_t, ∅) − g(ε_θ(x_t, c) − ε_θ(x_t, ∅))]‖² + λ_LA Σ_a ‖ε_{θ+Δ}(x_t, a) − ε_θ(x_t, a)‖²``:
the erase term is ESD's target, and latent anchoring keeps the adapter silent on random text
embeddings ``a`` (Gaussian, accepted with probability 1 − cos(a, c), rescaled to 0.8–1.2 ×
‖c‖). Teacher predictions are the same UNet with the adapter switched off. Training states come
from a partial DDIM trajectory with the membrane on. At inference the adapter is applied with
facilitated transport: strength γ = the prompt's highest cosine to a concept prompt.

The adapter is separate from the UNet, so it can be saved on its own and applied to another
UNet of the same shape (the paper's transfer claim; see :func:`apply_adapter`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import torch
import torch.nn.functional as F

from erasekit.core import progress, rng
from erasekit.core.errors import MethodError
from erasekit.core.extras import require
from erasekit.core.params import AT_LEAST_ONE, NON_NEGATIVE, POSITIVE, Params
from erasekit.generative.base import AdapterUNet, ConceptRequest, copy_unet, register_diffusion_method, training_states
from erasekit.models.diffusion_testbed import DiffusionModel

ADAPTER_NAME = "spm"
# every Linear / 1×1 Conv inside the UNet's transformer blocks (SPM's coverage); attn1 and attn2 are both listed on purpose
MEMBRANE_TARGETS = (
    r".*attentions\.\d+\.(proj_in|proj_out|transformer_blocks\.\d+\.(attn1|attn2)\.(to_q|to_k|to_v|to_out\.0)"
    r"|transformer_blocks\.\d+\.ff\.net\.(0\.proj|2))"
)


@dataclass(frozen=True)
class SPMParams(Params):
    """Authors' settings on SD1.4: rank 1, α 1, λ_LA 1000, 4 anchors per step, g = 1, 3000 iterations at lr 1e-4 with
    batch 1 and trajectory guidance 3. This model is 10⁴ times smaller: 200 iterations with 4 erase prompts per step,
    trajectories at the model's own sampling guidance (``trajectory_guidance`` None), and λ_LA 100 at lr 1e-2 — with
    the paper's λ_LA 1000 the anchoring term kept the adapter silent on the testbed (seven still drawn in 100 % of
    samples, also at lr 1e-2); λ_LA 100 took it to 12.5 %. ``transport`` False applies the adapter at full strength
    to every prompt."""

    iterations: Annotated[int, AT_LEAST_ONE] = 200
    lr: Annotated[float, POSITIVE] = 1e-2
    rank: Annotated[int, AT_LEAST_ONE] = 1
    anchor_weight: Annotated[float, NON_NEGATIVE] = 100.0
    anchors: Annotated[int, AT_LEAST_ONE] = 4
    negative_guidance: Annotated[float, NON_NEGATIVE] = 1.0
    batch_size: Annotated[int, AT_LEAST_ONE] = 4
    trajectory_guidance: float | None = None
    transport: bool = True
    seed: int = 0


def add_membrane(unet: Any, rank: int) -> Any:
    """Attach the rank-``rank`` membrane (peft LoRA, α = rank, U = 0) to ``unet`` in place; only it trains."""
    peft = require("peft", "SPM adapters")
    unet.add_adapter(
        peft.LoraConfig(r=rank, lora_alpha=rank, target_modules=MEMBRANE_TARGETS, init_lora_weights=True),
        adapter_name=ADAPTER_NAME,
    )
    if not any(p.requires_grad for p in unet.parameters()):
        raise MethodError("the UNet has no transformer-block layers for the SPM membrane to attach to")
    return unet


def anchor_states(concept: torch.Tensor, count: int, generator: torch.Generator) -> torch.Tensor:
    """SPM's latent anchors: random text states shaped like ``concept [L, d]``, accepted with probability
    1 − cos(anchor, concept) and rescaled to ``U[0.8, 1.2]·‖concept‖``."""
    flat = concept.flatten()
    accepted: list[torch.Tensor] = []
    while len(accepted) < count:
        draw = torch.randn(flat.shape, generator=generator).to(flat)
        draw = draw / draw.norm()
        cosine = float(F.cosine_similarity(draw, flat, dim=0))
        if float(torch.rand((), generator=generator)) < 1 - cosine:
            scale = 0.8 + 0.4 * float(torch.rand((), generator=generator))
            accepted.append(draw * scale * flat.norm())
    return torch.stack(accepted).reshape(count, *concept.shape)


@register_diffusion_method("spm", SPMParams)
def spm(model: DiffusionModel, request: ConceptRequest, params: SPMParams):
    """SPM: a rank-1 adapter trained with ESD's target plus latent anchoring, applied with facilitated transport."""
    unet = add_membrane(copy_unet(model), params.rank)
    unet.train()
    trainable = [p for p in unet.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(trainable, lr=params.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, params.iterations)
    generator = rng.generator(params.seed)
    guidance = params.trajectory_guidance or model.guidance
    prompts = list(request.erase_prompts)
    uncond = model.encode([""])
    with progress.step("spm", params.iterations) as advance:
        for _ in range(params.iterations):
            chosen = torch.randint(0, len(prompts), (params.batch_size,), generator=generator)
            cond = model.encode([prompts[int(i)] for i in chosen])
            empty = uncond.expand(len(cond), -1, -1)
            anchors = anchor_states(cond[0], params.anchors, generator)
            with torch.no_grad():
                unet.eval()  # the membrane stays on while drawing the states
                x_t, t = training_states(model, unet, cond, guidance, generator)
                x_anchor = x_t[torch.arange(params.anchors) % len(x_t)]
                unet.disable_adapters()  # teacher = the same UNet without the membrane
                eps_uncond = unet(x_t, t, encoder_hidden_states=empty).sample
                eps_cond = unet(x_t, t, encoder_hidden_states=cond).sample
                anchor_target = unet(x_anchor, t, encoder_hidden_states=anchors).sample
                unet.enable_adapters()
                target = eps_uncond - params.negative_guidance * (eps_cond - eps_uncond)
            unet.train()
            erase_loss = F.mse_loss(unet(x_t, t, encoder_hidden_states=cond).sample, target)
            anchor_loss = F.mse_loss(unet(x_anchor, t, encoder_hidden_states=anchors).sample, anchor_target)
            loss = erase_loss + params.anchor_weight * anchor_loss
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            advance(1)
    unet.eval().requires_grad_(False)
    transport = prompts if params.transport else []
    return AdapterUNet(unet, ADAPTER_NAME, model.encode(transport) if transport else None, transport)


def apply_adapter(
    model: DiffusionModel, adapter: dict[str, torch.Tensor], rank: int, concept_prompts: list[str] | None
) -> AdapterUNet:
    """An SPM adapter (``AdapterUNet.adapter_state()``) on ``model``'s UNet — the same or another of the same shape — with
    facilitated transport toward ``concept_prompts`` (None: full strength everywhere). ``model`` is not changed."""
    peft = require("peft", "SPM adapters")
    unet = add_membrane(copy_unet(model), rank)
    expected = set(peft.get_peft_model_state_dict(unet, adapter_name=ADAPTER_NAME))
    if set(adapter) != expected:
        missing = sorted(expected - set(adapter))
        raise MethodError(
            f"the adapter does not fit this UNet ({len(adapter)} tensors, {len(expected)} expected"
            + (f"; missing {missing[0]}" if missing else "")
            + "): apply it to a UNet of the shape it was trained on"
        )
    try:
        peft.set_peft_model_state_dict(unet, adapter, adapter_name=ADAPTER_NAME)
    except RuntimeError as exc:
        raise MethodError(f"the adapter does not fit this UNet: {str(exc).splitlines()[0]}") from None
    unet.eval().requires_grad_(False)
    return AdapterUNet(unet, ADAPTER_NAME, model.encode(concept_prompts) if concept_prompts else None, concept_prompts or ())
