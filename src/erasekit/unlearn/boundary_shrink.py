"""Boundary shrink — relabel forget samples with their nearest wrong class (Chen et al., "Boundary Unlearning", CVPR 2023)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar

import torch
import torch.nn.functional as F

from erasekit.core.params import POSITIVE
from erasekit.data.dataset import ArrayDataset, batches
from erasekit.training.steps import sgd_epochs
from erasekit.unlearn.base import SGDParams, UnlearningTask, register


@dataclass(frozen=True)
class BoundaryShrinkParams(SGDParams):
    """FGSM bound 0.1 (reference; inputs in [0, 1]); fine-tuning lr 0.01 with SGD for 5
    epochs over the relabelled forget set, no weight decay (chosen here for small models)."""

    epochs: int = 5
    weight_decay: float = 0.0
    bound: Annotated[float, POSITIVE] = 0.1

    SEARCH_SPACE: ClassVar[Mapping[str, Sequence[Any]]] = {**SGDParams.SEARCH_SPACE, "bound": (0.01, 0.05, 0.1, 0.3)}


def nearest_wrong_labels(model, dataset, bound: float, batch_size: int) -> torch.Tensor:
    """Label of each example after an FGSM step on the frozen model, never its own label."""
    model.eval()
    labels = []
    for x, y in batches(dataset, batch_size):
        x = x.clone().requires_grad_(True)
        loss = F.cross_entropy(model(x), y)
        (grad,) = torch.autograd.grad(loss, x)
        with torch.no_grad():
            logits = model(x + bound * grad.sign())
            logits[torch.arange(len(y)), y] = float("-inf")  # the nearest *wrong* class
            labels.append(logits.argmax(dim=1))
    return torch.cat(labels)


@register("boundary_shrink", BoundaryShrinkParams, forget_kinds=("class",))
def boundary_shrink(task: UnlearningTask, params: BoundaryShrinkParams):
    """Fine-tune forget samples toward the class an adversarial step pushes them into."""
    frozen = task.copy_model()
    forget = task.forget_set
    x_forget = torch.cat([x for x, _ in batches(forget, 1024)])
    relabelled = ArrayDataset(x_forget, nearest_wrong_labels(frozen, forget, params.bound, params.batch_size))
    return sgd_epochs(
        task.copy_model(),
        relabelled,
        params,
        task.seed,
        "boundary_shrink",
        lambda model, x, y: F.cross_entropy(model(x), y),
        stop=task.should_stop,
    )
