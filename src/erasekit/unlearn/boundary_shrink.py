"""Boundary shrink — relabel forget samples with their nearest wrong class (ALGORITHMS.md §1.10)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from erasekit import progress
from erasekit.data.dataset import ArrayDataset, batches, num_batches
from erasekit.unlearn._common import check_positive, seeded_generator, sgd, shuffled
from erasekit.unlearn.base import UnlearningTask, register


@dataclass(frozen=True)
class BoundaryShrinkParams:
    """FGSM bound 0.1 (reference; inputs in [0, 1]); fine-tuning lr 0.01 with SGD for 5
    epochs over the relabelled forget set (chosen here for small models)."""

    bound: float = 0.1
    epochs: int = 5
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 0.0
    batch_size: int = 64

    def __post_init__(self):
        check_positive(self, "bound", "epochs", "lr", "batch_size")


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


@register("boundary_shrink", BoundaryShrinkParams)
def boundary_shrink(task: UnlearningTask, params: BoundaryShrinkParams):
    """Fine-tune forget samples toward the class an adversarial step pushes them into."""
    frozen = task.copy_model()
    forget = task.forget_set
    x_forget = torch.cat([x for x, _ in batches(forget, 1024)])
    relabelled = ArrayDataset(x_forget, nearest_wrong_labels(frozen, forget, params.bound, params.batch_size))
    model = task.copy_model().train()
    optimizer = sgd(model, params.lr, params.momentum, params.weight_decay)
    generator = seeded_generator(task.seed)
    with progress.step("boundary_shrink", params.epochs * num_batches(relabelled, params.batch_size)) as advance:
        for _ in range(params.epochs):
            for x, y in shuffled(relabelled, params.batch_size, generator):
                optimizer.zero_grad(set_to_none=True)
                F.cross_entropy(model(x), y).backward()
                optimizer.step()
                advance(1)
    return model
