"""The diffusion-erasure family: what to erase (:class:`ConceptRequest`), what comes back
(:class:`ErasedDiffusion`), and the registry every method file adds itself to."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from erasekit.core.errors import MethodError
from erasekit.core.params import field_types
from erasekit.core.registry import Registry
from erasekit.core.resources import measure
from erasekit.models.diffusion_testbed import DiffusionModel


@dataclass(frozen=True)
class ConceptRequest:
    """Concepts to erase, as the prompts that name them, and the prompts whose images must not change.

    ``erase_prompts[i]`` belongs to concept ``concepts[i // per_concept]``; methods that map a
    concept onto a guide use ``guide_prompt`` ("" — the unconditional branch — by default, as UCE
    and ESD do for objects). ``preserve_prompts`` always gains ``""`` where a method needs it.
    """

    concepts: tuple[str, ...]
    erase_prompts: tuple[str, ...]
    preserve_prompts: tuple[str, ...] = ()
    guide_prompt: str = ""

    def __post_init__(self):
        if not self.concepts or not self.erase_prompts:
            raise MethodError("nothing to erase: give at least one concept and the prompts that name it")
        overlap = sorted(set(self.erase_prompts) & set(self.preserve_prompts))
        if overlap:
            raise MethodError(f"prompt {overlap[0]!r} is both erased and preserved; a concept cannot be both")


@dataclass(frozen=True)
class ErasedDiffusion:
    """An erasure's product: the edited UNet (a copy; the original is untouched) and what was done."""

    unet: nn.Module
    method: str
    params: Any
    request: ConceptRequest
    seconds: float
    edited_parameters: tuple[str, ...]
    changed_values: int  # how many weights differ from the original
    details: dict[str, float] = field(default_factory=dict)
    peak_memory_mb: float = 0.0  # above the level at the start: resident memory on the CPU, allocated memory on a GPU


@dataclass(frozen=True)
class DiffusionMethodInfo:
    name: str
    params_type: type
    fn: Callable[[DiffusionModel, ConceptRequest, Any], nn.Module]
    summary: str
    closed_form: bool

    def parameter_types(self) -> dict[str, Any]:
        return field_types(self.params_type)

    def make_params(self, values: dict[str, Any]):
        return self.params_type(**values)

    def parameter_defaults(self) -> dict[str, Any]:
        return {f.name: f.default for f in dataclasses.fields(self.params_type)}


DIFFUSION_METHODS: Registry[DiffusionMethodInfo] = Registry("diffusion erasure method", example="uce,esd_x")


def register_diffusion_method(name: str, params_type: type, closed_form: bool = False):
    """Register ``fn(model, request, params) -> edited UNet copy`` under ``name`` (a decorator in the method's file)."""

    def decorate(fn):
        summary = (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else ""
        DIFFUSION_METHODS.add(DiffusionMethodInfo(name, params_type, fn, summary, closed_form))
        return fn

    return decorate


def available_diffusion_methods() -> tuple[str, ...]:
    return DIFFUSION_METHODS.names()


def diffusion_method_info(name: str) -> DiffusionMethodInfo:
    return DIFFUSION_METHODS.get(name)


def erase_concepts(model: DiffusionModel, request: ConceptRequest, method: str, params: Any = None) -> ErasedDiffusion:
    """Run one registered method; times it and records which weights it changed."""
    info = diffusion_method_info(method)
    params = params if params is not None else info.params_type()
    if not isinstance(params, info.params_type):
        raise MethodError(f"{method} takes {info.params_type.__name__}, got {type(params).__name__}")
    # hashes, not a copy: a copy of every weight would double the memory of a Stable-Diffusion-size UNet
    before = {name: _tensor_digest(p) for name, p in model.unet.named_parameters()}
    with measure(device=model.device) as cost:
        edited = info.fn(model, request, params)
    original = dict(model.unet.named_parameters())
    for name, p in original.items():
        if _tensor_digest(p) != before[name]:
            raise RuntimeError(f"{method} changed the original UNet's {name}; methods must edit a copy")
    changed: list[str] = []
    count = 0
    for name, p in plain_unet(edited).named_parameters():
        diff = int((p.detach() != original[name].detach()).sum())
        if diff:
            changed.append(name)
            count += diff
    return ErasedDiffusion(
        edited.eval(), method, params, request, cost.seconds, tuple(changed), count, peak_memory_mb=cost.peak_memory_mb
    )


class AdapterUNet(nn.Module):
    """A UNet carrying a peft adapter whose strength is chosen per sample from its text states.

    SPM's facilitated transport (Lyu et al., CVPR 2024): the adapter trained to erase a concept is
    applied with strength ``γ = max_k cos(flat states, flat concept_states_k)`` clipped to [0, 1],
    scaling ``ΔW`` linearly (peft's adapter weight), so prompts far from the concept barely feel it.
    With ``concept_states`` None the adapter is always applied at strength 1. Called like a
    ``UNet2DConditionModel``; :meth:`merged` gives a plain UNet with the adapter fused at strength 1.
    """

    concept_states: torch.Tensor | None  # a buffer

    def __init__(
        self,
        unet: nn.Module,
        adapter_name: str,
        concept_states: torch.Tensor | None = None,
        transport_prompts: Sequence[str] = (),
    ):
        super().__init__()
        self.unet: Any = unet  # a diffusers UNet with peft layers (set_adapters, fuse_lora, peft_config)
        self.adapter_name = adapter_name
        self.transport_prompts = tuple(transport_prompts)  # the prompts behind concept_states (saved with the adapter)
        self.register_buffer("concept_states", None if concept_states is None else concept_states.detach().clone())
        self.config = unet.config
        self._merged: tuple[tuple, nn.Module] | None = None

    def strength(self, states: torch.Tensor) -> torch.Tensor:
        """γ per sample ``[B]``: 1 without transport; otherwise the highest cosine to any concept prompt, in [0, 1]."""
        if self.concept_states is None:
            return torch.ones(len(states), device=states.device)
        flat = torch.nn.functional.normalize(states.flatten(1).float(), dim=1)
        concepts = torch.nn.functional.normalize(self.concept_states.flatten(1).float().to(states.device), dim=1)
        # rounded so that samples of one prompt share one forward pass
        return torch.round((flat @ concepts.T).max(1).values.clamp(0, 1) * 1e4) / 1e4

    def forward(self, sample, timestep, encoder_hidden_states, **kwargs):
        from diffusers.models.unets.unet_2d_condition import UNet2DConditionOutput

        gamma = self.strength(encoder_hidden_states.detach())  # a choice of strength, not a path for gradients
        out = torch.empty_like(sample)
        per_sample_t = torch.is_tensor(timestep) and timestep.ndim > 0 and len(timestep) == len(sample)
        try:
            for value in torch.unique(gamma):
                rows = gamma == value
                self.unet.set_adapters([self.adapter_name], weights=[float(value)])
                t = timestep[rows] if per_sample_t else timestep
                out[rows] = self.unet(sample[rows], t, encoder_hidden_states=encoder_hidden_states[rows], **kwargs).sample
        finally:
            self.unet.set_adapters([self.adapter_name], weights=[1.0])
        return UNet2DConditionOutput(sample=out)

    @property
    def rank(self) -> int:
        return int(self.unet.peft_config[self.adapter_name].r)

    def adapter_state(self) -> dict[str, torch.Tensor]:
        """The adapter's own weights (peft names), e.g. to save or to apply to another UNet of the same shape."""
        from peft import get_peft_model_state_dict

        return {
            k: v.detach().contiguous() for k, v in get_peft_model_state_dict(self.unet, adapter_name=self.adapter_name).items()
        }

    @torch.no_grad()
    def merged(self) -> nn.Module:
        """A plain UNet (no peft layers, the original's parameter names) with the adapter fused at strength 1. Made once
        and kept (an audit asks for it per attack); made again if the adapter's weights were changed in place since."""
        lora = [p for name, p in self.unet.named_parameters() if "lora_" in name]
        versions = (str(lora[0].device) if lora else "", *(p._version for p in lora))
        if self._merged is not None and self._merged[0] == versions:
            return self._merged[1]
        plain: Any = copy.deepcopy(self.unet)
        plain.set_adapters([self.adapter_name], weights=[1.0])
        plain.fuse_lora(lora_scale=1.0)
        plain.unload_lora()
        plain = plain.requires_grad_(False).eval()
        self._merged = (versions, plain)
        return plain


def plain_unet(unet: nn.Module) -> nn.Module:
    """``unet`` itself, or a wrapper's plain UNet — an :class:`AdapterUNet`'s adapter fused at strength 1, an
    inference-time guard's unchanged UNet — for weight-space analysis."""
    merged = getattr(unet, "merged", None)
    return merged() if callable(merged) else unet


@torch.no_grad()
def training_states(
    model: DiffusionModel, unet: nn.Module, cond: torch.Tensor, guidance: float, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """ESD's and SPM's data-free training states: ``x_t`` after ``k ~ U{0..K−1}`` DDIM steps of ``unet`` from fresh
    noise with guidance on ``cond`` (one start per row), and the matching timestep ``t``."""
    scheduler = model.sampling_scheduler()
    scheduler.set_timesteps(model.steps)
    k = int(torch.randint(0, len(scheduler.timesteps), (1,), generator=generator))
    seeds = torch.randint(0, 2**31 - 1, (len(cond),), generator=generator).tolist()
    empty = model.encode([""]).expand(len(cond), -1, -1)
    x_t = model.denoise(unet, model.initial_latents(seeds), cond, empty, guidance, model.steps, last_step=k)
    return x_t, scheduler.timesteps[k]


def _tensor_digest(tensor: torch.Tensor) -> str:
    return hashlib.sha256(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes()).hexdigest()


def copy_unet(model: DiffusionModel) -> nn.Module:
    """A detached deep copy of the model's UNet (methods edit this, never the original)."""
    unet = copy.deepcopy(model.unet)
    unet.requires_grad_(False)
    return unet


def cross_attention_projections(unet: nn.Module, which: Sequence[str] = ("to_k", "to_v")) -> list[tuple[str, nn.Linear]]:
    """Every ``attn2.<which>`` Linear: the maps from text tokens into the image (SD's 32 in v1.4)."""
    found = [
        (name, module)
        for name, module in unet.named_modules()
        if name.rsplit(".", 2)[-2:-1] == ["attn2"] and name.rsplit(".", 1)[-1] in which
    ]
    if not found:
        raise MethodError("the UNet has no cross-attention projections (attn2.to_k / to_v)")
    return found
