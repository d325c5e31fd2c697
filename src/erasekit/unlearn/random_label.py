"""Random labels (RL) — fine-tune on relabelled forget data and on the retain set (Golatkar et al., CVPR 2020; the interleaved form of Fan et al., "SalUn", ICLR 2024)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from erasekit.core import progress
from erasekit.core.rng import generator as seeded_generator
from erasekit.data.dataset import num_batches
from erasekit.training.steps import shuffled
from erasekit.unlearn.base import SGDParams, UnlearningTask, register


@dataclass(frozen=True)
class RandomLabelParams(SGDParams):
    """Reference code: 10 epochs, lr ≈ 0.01, SGD momentum 0.9, weight decay 5e-4."""


def random_other_labels(y: torch.Tensor, num_classes: int, generator: torch.Generator) -> torch.Tensor:
    """Labels drawn uniformly from all C classes (the RL convention excludes nothing)."""
    return torch.randint(0, num_classes, y.shape, generator=generator)


def random_label_loop(
    task: UnlearningTask,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    epochs: int,
    batch_size: int,
    description: str,
    after_step: Callable[[], None] = lambda: None,
    before_step: Callable[[], None] = lambda: None,
) -> nn.Module:
    """Each epoch: one pass over the forget set with uniformly random labels, then one pass
    over the retain set with true labels. ``before_step``/``after_step`` let SalUn mask
    gradients and restore frozen weights."""
    generator = seeded_generator(task.seed)
    steps = epochs * (num_batches(task.forget_set, batch_size) + num_batches(task.retain_set, batch_size))
    model.train()
    with progress.step(description, steps) as advance:
        for _ in range(epochs):
            for relabel, dataset in ((True, task.forget_set), (False, task.retain_set)):
                for x, y in shuffled(dataset, batch_size, generator):
                    if relabel:
                        y = random_other_labels(y, task.num_classes, generator)
                    optimizer.zero_grad(set_to_none=True)
                    task.loss(model(x), y).backward()
                    before_step()
                    optimizer.step()
                    after_step()
                    advance(1)
            if task.should_stop(model):
                break
    return model


@register("random_label", RandomLabelParams)
def random_label(task: UnlearningTask, params: RandomLabelParams):
    """Fine-tune on forget examples with random labels, interleaved with retain fine-tuning."""
    model = task.copy_model()
    optimizer = task.optimizer(model, params.lr, params.momentum, params.weight_decay)
    return random_label_loop(task, model, optimizer, params.epochs, params.batch_size, "random_label")
