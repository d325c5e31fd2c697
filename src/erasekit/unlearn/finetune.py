"""Fine-tune (FT) on the retain set (ALGORITHMS.md §1.2)."""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F

from erasekit import progress
from erasekit.data.dataset import num_batches
from erasekit.unlearn._common import check_positive, seeded_generator, sgd, shuffled
from erasekit.unlearn.base import UnlearningTask, register


@dataclass(frozen=True)
class FinetuneParams:
    """Defaults from the SalUn/Sparse reference code: SGD lr 0.01, momentum 0.9, wd 5e-4, 10 epochs."""

    epochs: int = 10
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    batch_size: int = 64

    def __post_init__(self):
        check_positive(self, "epochs", "lr", "batch_size")


@register("finetune", FinetuneParams)
def finetune(task: UnlearningTask, params: FinetuneParams):
    """Continue training θ₀ on the retain set only (catastrophic-forgetting baseline)."""
    model = task.copy_model().train()
    optimizer = sgd(model, params.lr, params.momentum, params.weight_decay)
    generator = seeded_generator(task.seed)
    steps = params.epochs * num_batches(task.retain_set, params.batch_size)
    with progress.step("finetune", steps) as advance:
        for _ in range(params.epochs):
            for x, y in shuffled(task.retain_set, params.batch_size, generator):
                optimizer.zero_grad(set_to_none=True)
                F.cross_entropy(model(x), y).backward()
                optimizer.step()
                advance(1)
    return model
