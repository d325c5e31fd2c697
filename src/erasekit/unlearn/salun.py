"""SalUn — saliency-masked random-label unlearning (Fan et al., "SalUn: Empowering Machine Unlearning via Gradient-based Weight Saliency", ICLR 2024)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from erasekit.core import progress
from erasekit.core.params import FRACTION
from erasekit.data.dataset import batches, num_batches
from erasekit.unlearn.base import SGDParams, UnlearningTask, register
from erasekit.unlearn.random_label import random_label_loop


@dataclass(frozen=True)
class SalUnParams(SGDParams):
    """Defaults from the SalUn reference code: mask_ratio 0.5 (the median saliency), 10 epochs,
    lr 0.013, SGD momentum 0.9, weight decay 5e-4. Results swing between no forgetting and
    over-forgetting with ``mask_ratio`` and ``lr``: tune against the gap to retrain."""

    lr: float = 0.013
    mask_ratio: Annotated[float, FRACTION] = 0.5

    SEARCH_SPACE: ClassVar[Mapping[str, Sequence[Any]]] = {**SGDParams.SEARCH_SPACE, "mask_ratio": (0.1, 0.3, 0.5, 0.7, 0.9)}


def saliency_mask(
    model: nn.Module,
    forget_set,
    ratio: float,
    batch_size: int,
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = F.cross_entropy,
) -> dict[str, torch.Tensor]:
    """1 for the top ``ratio`` of |Σ_batches ∇θ(−ℓ(θ₀; B_f))| over the whole network, else 0."""
    model.eval()
    model.zero_grad(set_to_none=True)
    for x, y in batches(forget_set, batch_size):
        logits = model(x)
        (-loss(logits, y.to(logits.device))).backward()  # .grad accumulates the sum over batches
    saliency = {
        name: p.grad.abs().flatten() if p.grad is not None else torch.zeros(p.numel(), device=p.device)
        for name, p in model.named_parameters()
    }
    model.zero_grad(set_to_none=True)
    flat = torch.cat(list(saliency.values()))
    n_keep = max(1, int(round(ratio * flat.numel())))
    keep = torch.zeros_like(flat, dtype=torch.bool)
    keep[torch.topk(flat, n_keep, sorted=False).indices] = True  # exactly n_keep entries, ties broken by index
    masks, offset = {}, 0
    for name, p in model.named_parameters():
        masks[name] = keep[offset : offset + p.numel()].view_as(p)
        offset += p.numel()
    return masks


@register("salun", SalUnParams)
def salun(task: UnlearningTask, params: SalUnParams):
    """Random-label unlearning restricted to the most forget-salient weights; the rest stay θ₀ exactly."""
    model = task.copy_model()
    with progress.step("salun saliency", num_batches(task.forget_set, params.batch_size)):
        masks = saliency_mask(model, task.forget_set, params.mask_ratio, params.batch_size, task.loss)
    named = dict(model.named_parameters())
    frozen_values = {name: p.detach().clone() for name, p in named.items()}
    optimizer = task.optimizer(model, params.lr, params.momentum, params.weight_decay)

    def mask_gradients() -> None:
        for name, p in named.items():
            if p.grad is not None:
                p.grad.mul_(masks[name])

    def restore_frozen() -> None:
        # weight decay and momentum would otherwise move masked-out weights
        with torch.no_grad():
            for name, p in named.items():
                keep = masks[name]
                p.copy_(torch.where(keep, p, frozen_values[name]))
                buffer = optimizer.state.get(p, {}).get("momentum_buffer")
                if buffer is not None:
                    buffer.mul_(keep)

    return random_label_loop(
        task,
        model,
        optimizer,
        params.epochs,
        params.batch_size,
        "salun",
        before_step=mask_gradients,
        after_step=restore_frozen,
    )
