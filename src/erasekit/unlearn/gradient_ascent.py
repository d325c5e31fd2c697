"""Gradient ascent (GA / NegGrad) on the forget set (ALGORITHMS.md §1.3)."""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F

from erasekit import progress
from erasekit.data.dataset import num_batches
from erasekit.unlearn._common import check_positive, seeded_generator, sgd, shuffled
from erasekit.unlearn.base import UnlearningTask, register


@dataclass(frozen=True)
class GradientAscentParams:
    """Reference code uses lr 1e-4 for 5 epochs; its maintainers advise 5e-4–1e-3 when nothing
    is forgotten, which is the case for small models, so the default here is 1e-3."""

    epochs: int = 5
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 0.0
    batch_size: int = 64

    def __post_init__(self):
        check_positive(self, "epochs", "lr", "batch_size")


@register("gradient_ascent", GradientAscentParams)
def gradient_ascent(task: UnlearningTask, params: GradientAscentParams):
    """Maximise the loss on the forget set (step on −ℓ); collapses the model if run too long."""
    model = task.copy_model().train()
    optimizer = sgd(model, params.lr, params.momentum, params.weight_decay)
    generator = seeded_generator(task.seed)
    steps = params.epochs * num_batches(task.forget_set, params.batch_size)
    with progress.step("gradient_ascent", steps) as advance:
        for _ in range(params.epochs):
            for x, y in shuffled(task.forget_set, params.batch_size, generator):
                optimizer.zero_grad(set_to_none=True)
                (-F.cross_entropy(model(x), y)).backward()
                optimizer.step()
                advance(1)
    return model
