"""Training steps shared by methods that fine-tune a copy of a model: SGD, seeded shuffling, epoch loops."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Protocol

import torch
from torch import nn
from torch.utils.data import Dataset

from erasekit.core import progress
from erasekit.core.rng import generator as seeded_generator
from erasekit.data.dataset import batches, num_batches


class SGDSettings(Protocol):
    """The optimiser fields a fine-tuning method's parameters carry."""

    @property
    def epochs(self) -> int: ...

    @property
    def lr(self) -> float: ...

    @property
    def momentum(self) -> float: ...

    @property
    def weight_decay(self) -> float: ...

    @property
    def batch_size(self) -> int: ...


def sgd(model: nn.Module, lr: float, momentum: float, weight_decay: float) -> torch.optim.SGD:
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)


def shuffled(dataset: Dataset, batch_size: int, generator: torch.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    return batches(dataset, batch_size, shuffle=True, generator=generator)


def endless(dataset: Dataset, batch_size: int, generator: torch.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Cycle through reshuffled epochs of ``dataset`` forever (for pairing with another loader)."""
    return itertools.chain.from_iterable(shuffled(dataset, batch_size, generator) for _ in itertools.count())


def sgd_epochs(
    model: nn.Module,
    dataset: Dataset,
    params: SGDSettings,
    seed: int,
    description: str,
    loss_fn: Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor],
    stop: Callable[[nn.Module], bool] | None = None,
    optimizer: torch.optim.Optimizer | None = None,
) -> nn.Module:
    """``params.epochs`` shuffled passes over ``dataset`` stepping ``optimizer`` (default: SGD with
    ``params``' settings) on ``loss_fn(model, x, y)``; ``stop(model)`` is asked after every epoch
    and ends training early when it returns True."""
    optimizer = optimizer or sgd(model, params.lr, params.momentum, params.weight_decay)
    generator = seeded_generator(seed)
    model.train()
    with progress.step(description, params.epochs * num_batches(dataset, params.batch_size)) as advance:
        for _ in range(params.epochs):
            for x, y in shuffled(dataset, params.batch_size, generator):
                optimizer.zero_grad(set_to_none=True)
                loss_fn(model, x, y).backward()
                optimizer.step()
                advance(1)
            if stop is not None and stop(model):
                break
    return model
