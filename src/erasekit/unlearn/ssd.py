"""SSD — Selective Synaptic Dampening, and its label-free variant LFSSD (Foster et al., "Fast Machine Unlearning Without Retraining Through Selective Synaptic Dampening", AAAI 2024; "Loss-Free Machine Unlearning", ICLR 2024 Tiny Papers)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from erasekit.core import progress
from erasekit.core.params import AT_LEAST_ONE, POSITIVE, Params
from erasekit.data.dataset import batches, num_batches
from erasekit.unlearn.base import UnlearningTask, register


@dataclass(frozen=True)
class SSDParams(Params):
    """Select θ_i when I_F,i > alpha·I_D,i; dampen θ_i ← min(lam·I_D,i/I_F,i, 1)·θ_i.

    Defaults from the SSD paper for ResNet-18: alpha (selection weighting) 10, lam
    (dampening constant) 1. ``batch_size`` sets the minibatches the Fisher diagonal is
    averaged over.
    """

    alpha: Annotated[float, POSITIVE] = 10.0
    lam: Annotated[float, POSITIVE] = 1.0
    batch_size: Annotated[int, AT_LEAST_ONE] = 64

    SEARCH_SPACE: ClassVar[Mapping[str, Sequence[Any]]] = {"alpha": (1.0, 3.0, 10.0, 30.0, 100.0), "lam": (0.1, 0.3, 1.0, 3.0)}


@dataclass(frozen=True)
class LFSSDParams(SSDParams):
    """Same selection and dampening; importances from the squared logit norm, no labels."""


def importances(
    model: nn.Module,
    dataset,
    batch_size: int,
    label_free: bool,
    description: str,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = F.cross_entropy,
) -> dict[str, torch.Tensor]:
    """Diagonal empirical Fisher: mean over minibatches of (∂ℓ/∂θ)² (or |∂‖f(x)‖²/∂θ| if label-free)."""
    model.eval()
    totals = {name: torch.zeros_like(p) for name, p in model.named_parameters()}
    count = 0
    with progress.step(description, num_batches(dataset, batch_size)) as advance:
        for x, y in batches(dataset, batch_size):
            model.zero_grad(set_to_none=True)
            logits = model(x)
            loss = logits.pow(2).sum(dim=1).mean() if label_free else loss_fn(logits, y.to(logits.device))
            loss.backward()
            for name, p in model.named_parameters():
                if p.grad is not None:
                    totals[name] += p.grad.abs() if label_free else p.grad.pow(2)
            count += 1
            advance(1)
    model.zero_grad(set_to_none=True)
    return {name: total / max(count, 1) for name, total in totals.items()}


def dampen(task: UnlearningTask, params: SSDParams, label_free: bool) -> nn.Module:
    model = task.copy_model()
    key = ("ssd-full-data", label_free, params.batch_size, task.model_sha256, task.data_sha256)
    full = task.cache.get_or_compute(
        key, lambda: importances(model, task.train, params.batch_size, label_free, "ssd importances (full data)", task.loss)
    )
    forget = importances(model, task.forget_set, params.batch_size, label_free, "ssd importances (forget set)", task.loss)
    with torch.no_grad():
        for name, p in model.named_parameters():
            selected = forget[name] > params.alpha * full[name]
            factor = (params.lam * full[name] / forget[name].clamp_min(torch.finfo(p.dtype).tiny)).clamp(max=1.0)
            p.mul_(torch.where(selected, factor, torch.ones_like(factor)))
    return model


@register("ssd", SSDParams)
def ssd(task: UnlearningTask, params: SSDParams):
    """Retrain-free: dampen weights far more important to the forget set than to all data."""
    return dampen(task, params, label_free=False)


@register("lfssd", LFSSDParams)
def lfssd(task: UnlearningTask, params: LFSSDParams):
    """Label-free SSD: importances from the squared logit norm, accumulating |grad|."""
    return dampen(task, params, label_free=True)
