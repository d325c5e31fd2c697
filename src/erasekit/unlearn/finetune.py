"""Fine-tune (FT) on the retain set (ALGORITHMS.md §1.2)."""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F

from erasekit.unlearn._common import SGDParams, sgd_epochs
from erasekit.unlearn.base import UnlearningTask, register


@dataclass(frozen=True)
class FinetuneParams(SGDParams):
    """Defaults from the SalUn/Sparse reference code: SGD lr 0.01, momentum 0.9, wd 5e-4, 10 epochs."""


@register("finetune", FinetuneParams)
def finetune(task: UnlearningTask, params: FinetuneParams):
    """Continue training θ₀ on the retain set only (catastrophic-forgetting baseline)."""
    return sgd_epochs(
        task.copy_model(), task.retain_set, params, task.seed, "finetune",
        lambda model, x, y: F.cross_entropy(model(x), y),
    )
