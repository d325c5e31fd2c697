"""Boundary shrink — relabel forget samples with their nearest wrong class (Chen et al., "Boundary Unlearning", CVPR 2023)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar

import torch
import torch.nn.functional as F

from erasekit.core.device import model_device
from erasekit.core.errors import MethodError
from erasekit.core.params import POSITIVE
from erasekit.data.dataset import ArrayDataset, batches, is_array_input
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


def nearest_wrong_labels(model, dataset, bound: float, batch_size: int, loss_fn=F.cross_entropy) -> torch.Tensor:
    """Label of each example after an FGSM step on the frozen model, never its own label (on the CPU)."""
    model.eval()
    device = model_device(model)
    labels = []
    for x, y in batches(dataset, batch_size):
        x, y = x.to(device), y.to(device)
        x = x.clone().requires_grad_(True)
        loss = loss_fn(model(x), y)
        (grad,) = torch.autograd.grad(loss, x)
        with torch.no_grad():
            logits = model(x + bound * grad.sign())
            logits[torch.arange(len(y)), y] = float("-inf")  # the nearest *wrong* class
            labels.append(logits.argmax(dim=1).cpu())
    return torch.cat(labels)


@register("boundary_shrink", BoundaryShrinkParams, forget_kinds=("class",))
def boundary_shrink(task: UnlearningTask, params: BoundaryShrinkParams):
    """Fine-tune forget samples toward the class an adversarial step pushes them into."""
    forget = task.forget_set
    if not is_array_input(forget):
        raise MethodError(
            "boundary_shrink takes an adversarial step on the inputs, so it needs one floating tensor per example; "
            "these inputs are integers or a dict (e.g. token ids): use another method"
        )
    frozen = task.copy_model()
    x_forget = torch.cat([x for x, _ in batches(forget, 1024)])
    relabelled = ArrayDataset(x_forget, nearest_wrong_labels(frozen, forget, params.bound, params.batch_size, task.loss))
    model = task.copy_model()
    return sgd_epochs(
        model,
        relabelled,
        params,
        task.seed,
        "boundary_shrink",
        lambda model, x, y: task.loss(model(x), y),
        stop=task.should_stop,
        optimizer=task.optimizer(model, params.lr, params.momentum, params.weight_decay),
    )
