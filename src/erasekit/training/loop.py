"""One training loop and the :class:`Recipe` that trains both the original and the retrain reference."""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import asdict, dataclass, fields
from typing import Annotated, Literal

import torch
from torch import nn
from torch.utils.data import Dataset

from erasekit.core import progress
from erasekit.core.errors import ModelError
from erasekit.core.params import AT_LEAST_ONE, NON_NEGATIVE, POSITIVE, Params
from erasekit.core.rng import generator, seeded
from erasekit.data.dataset import batches, num_batches


@dataclass(frozen=True)
class Recipe(Params):
    """How a model is trained. The retrain reference reuses the original's recipe exactly.

    Defaults suit the bundled small MLP/CNN: SGD with momentum 0.9, weight decay 5e-4 (the
    SalUn/Sparse CIFAR recipe's optimiser settings), a cosine learning-rate decay, 20 epochs.
    """

    epochs: Annotated[int, AT_LEAST_ONE] = 20
    batch_size: Annotated[int, AT_LEAST_ONE] = 64
    lr: Annotated[float, POSITIVE] = 0.05
    momentum: Annotated[float, NON_NEGATIVE] = 0.9
    weight_decay: Annotated[float, NON_NEGATIVE] = 5e-4
    optimizer: Literal["sgd", "adam"] = "sgd"
    schedule: Literal["cosine", "constant"] = "cosine"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.optimizer not in ("sgd", "adam") or self.schedule not in ("cosine", "constant"):
            raise ModelError(f"recipe optimizer must be sgd|adam and schedule cosine|constant, got {self}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Recipe:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def sha256(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()

    def make_optimizer(self, parameters) -> torch.optim.Optimizer:
        if self.optimizer == "adam":
            return torch.optim.Adam(parameters, lr=self.lr, weight_decay=self.weight_decay)
        return torch.optim.SGD(parameters, lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay)


def train(model: nn.Module, dataset: Dataset, recipe: Recipe, seed: int = 0, description: str = "train") -> nn.Module:
    """Train ``model`` in place on ``dataset`` with ``recipe``; shuffling and init noise follow ``seed``."""
    shuffle = generator(seed)
    optimizer = recipe.make_optimizer(model.parameters())
    steps = recipe.epochs * num_batches(dataset, recipe.batch_size)
    scheduler = (
        torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
        if recipe.schedule == "cosine"
        else torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    )
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    with seeded(seed), progress.step(description, steps) as advance:  # dropout-style noise follows the seed
        for _ in range(recipe.epochs):
            for x, y in batches(dataset, recipe.batch_size, shuffle=True, generator=shuffle):
                optimizer.zero_grad(set_to_none=True)
                loss_fn(model(x), y).backward()
                optimizer.step()
                scheduler.step()
                advance(1)
    model.eval()
    return model


def fresh_init(model: nn.Module, seed: int) -> nn.Module:
    """A copy of ``model`` with every parameter re-drawn from its module's own initialiser.

    Raises :class:`ModelError` when a module owns parameters but has no ``reset_parameters``
    (the copy would silently keep trained weights, so the "retrain" would not be exact).
    """
    fresh = copy.deepcopy(model)
    with seeded(seed):
        for name, module in fresh.named_modules():
            owns_parameters = any(True for _ in module.parameters(recurse=False))
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
            elif owns_parameters:
                raise ModelError(
                    f"module '{name or type(module).__name__}' has parameters but no reset_parameters(); "
                    "pass model_factory= to UnlearningTask so the retrain reference starts from a fresh init"
                )
    return fresh
