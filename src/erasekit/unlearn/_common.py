"""Small pieces shared by several methods: optimisers, seeded shuffling, parameter checks."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.data import Dataset

from erasekit import progress
from erasekit.data.dataset import batches, num_batches
from erasekit.errors import MethodError


def check_positive(params, *names: str) -> None:
    for name in names:
        value = getattr(params, name)
        if not value > 0:
            raise MethodError(f"{type(params).__name__}.{name} must be > 0, got {value}")


def check_fraction(params, name: str, low_open: bool = True) -> None:
    value = getattr(params, name)
    ok = (0.0 < value <= 1.0) if low_open else (0.0 <= value < 1.0)
    if not ok:
        interval = "(0, 1]" if low_open else "[0, 1)"
        raise MethodError(f"{type(params).__name__}.{name} must be in {interval}, got {value}")


def sgd(model: nn.Module, lr: float, momentum: float, weight_decay: float) -> torch.optim.SGD:
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)


def shuffled(dataset: Dataset, batch_size: int, generator: torch.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    return batches(dataset, batch_size, shuffle=True, generator=generator)


def endless(dataset: Dataset, batch_size: int, generator: torch.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Cycle through reshuffled epochs of ``dataset`` forever (for pairing with another loader)."""
    return itertools.chain.from_iterable(shuffled(dataset, batch_size, generator) for _ in itertools.count())


def seeded_generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def random_other_labels(y: torch.Tensor, num_classes: int, generator: torch.Generator) -> torch.Tensor:
    """Labels drawn uniformly from all C classes (the RL convention excludes nothing)."""
    return torch.randint(0, num_classes, y.shape, generator=generator)


@dataclass(frozen=True)
class SGDParams:
    """Shared optimiser fields of the fine-tuning-style methods (SGD with momentum).

    Defaults are the SalUn/Sparse reference code's: 10 epochs, lr 0.01, momentum 0.9,
    weight decay 5e-4, batch 64. Each method's subclass documents where it differs.
    """

    epochs: int = 10
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    batch_size: int = 64

    def __post_init__(self):
        check_positive(self, "epochs", "lr", "batch_size")
        if self.weight_decay < 0 or self.momentum < 0:
            raise MethodError(f"{type(self).__name__}: weight_decay and momentum must be ≥ 0")


def sgd_epochs(
    model: nn.Module,
    dataset: Dataset,
    params: SGDParams,
    seed: int,
    description: str,
    loss_fn: Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor],
) -> nn.Module:
    """``params.epochs`` shuffled passes over ``dataset`` stepping SGD on ``loss_fn(model, x, y)``."""
    optimizer = sgd(model, params.lr, params.momentum, params.weight_decay)
    generator = seeded_generator(seed)
    model.train()
    with progress.step(description, params.epochs * num_batches(dataset, params.batch_size)) as advance:
        for _ in range(params.epochs):
            for x, y in shuffled(dataset, params.batch_size, generator):
                optimizer.zero_grad(set_to_none=True)
                loss_fn(model, x, y).backward()
                optimizer.step()
                advance(1)
    return model
