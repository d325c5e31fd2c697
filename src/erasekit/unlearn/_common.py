"""Small pieces shared by several methods: optimisers, seeded shuffling, parameter checks."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import torch
from torch import nn
from torch.utils.data import Dataset

from erasekit.data.dataset import batches
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
