"""The diffusion-erasure family: what to erase (:class:`ConceptRequest`), what comes back
(:class:`ErasedDiffusion`), and the registry every method file adds itself to."""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from erasekit.core.errors import MethodError
from erasekit.core.params import field_types
from erasekit.core.registry import Registry
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
    before = {name: p.detach().clone() for name, p in model.unet.named_parameters()}
    start = time.perf_counter()
    edited = info.fn(model, request, params)
    seconds = time.perf_counter() - start
    changed: list[str] = []
    count = 0
    for name, p in edited.named_parameters():
        diff = int((p.detach() != before[name]).sum())
        if diff:
            changed.append(name)
            count += diff
    for name, p in model.unet.named_parameters():
        if not torch.equal(p.detach(), before[name]):
            raise RuntimeError(f"{method} changed the original UNet's {name}; methods must edit a copy")
    return ErasedDiffusion(edited.eval(), method, params, request, seconds, tuple(changed), count)


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
