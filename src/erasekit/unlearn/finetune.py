"""Fine-tune (FT) on the retain set (baseline of Golatkar et al., "Eternal Sunshine of the Spotless Net", CVPR 2020; defaults of Jia et al., "Model Sparsity Can Simplify Machine Unlearning", NeurIPS 2023)."""

from __future__ import annotations

from dataclasses import dataclass

from erasekit.training.steps import sgd_epochs
from erasekit.unlearn.base import SGDParams, UnlearningTask, register


@dataclass(frozen=True)
class FinetuneParams(SGDParams):
    """Defaults from the SalUn/Sparse reference code: SGD lr 0.01, momentum 0.9, wd 5e-4, 10 epochs."""


@register("finetune", FinetuneParams)
def finetune(task: UnlearningTask, params: FinetuneParams):
    """Continue training θ₀ on the retain set only (catastrophic-forgetting baseline)."""
    model = task.copy_model()
    return sgd_epochs(
        model,
        task.retain_set,
        params,
        task.seed,
        "finetune",
        lambda model, x, y: task.loss(model(x), y),
        stop=task.should_stop,
        optimizer=task.optimizer(model, params.lr, params.momentum, params.weight_decay),
    )
