"""One training loop and the :class:`Recipe` that trains both the original and the retrain reference."""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from typing import Annotated, Any, Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from erasekit.core import progress
from erasekit.core.errors import ModelError
from erasekit.core.params import AT_LEAST_ONE, NON_NEGATIVE, POSITIVE, Params
from erasekit.core.rng import generator, seeded
from erasekit.data.dataset import as_dataset, batches, num_batches
from erasekit.models.adapter import as_classifier


@dataclass(frozen=True)
class Recipe(Params):
    """How a model is trained. The retrain reference reuses the original's recipe exactly.

    Defaults suit the bundled small MLP/CNN: SGD with momentum 0.9, weight decay 5e-4 (the
    SalUn/Sparse CIFAR recipe's optimiser settings), a cosine learning-rate decay, 20 epochs,
    cross-entropy.

    A model trained some other way brings its own parts, so that retraining is exact and the
    fine-tuning-style methods descend on the same objective:

    - ``loss(logits, labels) -> scalar`` (default: cross-entropy);
    - ``optimizer_factory(parameters, lr) -> Optimizer`` (default: SGD with ``momentum`` and
      ``weight_decay``); methods call it with their own learning rate;
    - ``scheduler_factory(optimizer, total_steps) -> LRScheduler`` (default: ``schedule``), used
      when training the original and the retrain reference;
    - ``train_step(model, inputs, labels, optimizer) -> loss`` replaces the whole step of
      training (zero_grad, forward, backward, step) when the recipe needs more (gradient
      clipping, auxiliary losses); ``model`` returns logits.

    ``name`` identifies custom parts in reports and cache keys: change it when you change them.
    """

    epochs: Annotated[int, AT_LEAST_ONE] = 20
    batch_size: Annotated[int, AT_LEAST_ONE] = 64
    lr: Annotated[float, POSITIVE] = 0.05
    momentum: Annotated[float, NON_NEGATIVE] = 0.9
    weight_decay: Annotated[float, NON_NEGATIVE] = 5e-4
    optimizer: Literal["sgd", "adam"] = "sgd"
    schedule: Literal["cosine", "constant"] = "cosine"
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None
    optimizer_factory: Callable[[Iterable[nn.Parameter], float], torch.optim.Optimizer] | None = None
    scheduler_factory: Callable[[torch.optim.Optimizer, int], Any] | None = None
    train_step: Callable[[nn.Module, Any, torch.Tensor, torch.optim.Optimizer], torch.Tensor] | None = None
    name: str = "built-in"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.optimizer not in ("sgd", "adam") or self.schedule not in ("cosine", "constant"):
            raise ModelError(f"recipe optimizer must be sgd|adam and schedule cosine|constant, got {self}")
        for part in CUSTOM_PARTS:
            value = getattr(self, part)
            if value is not None and not callable(value):
                raise ModelError(f"Recipe.{part} must be a callable, got {type(value).__name__}")

    @property
    def custom_parts(self) -> tuple[str, ...]:
        """The names of the parts the user supplied (empty for the built-in recipe)."""
        return tuple(part for part in CUSTOM_PARTS if getattr(self, part) is not None)

    def to_dict(self) -> dict:
        """JSON-safe: a custom part is recorded by its qualified name."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in CUSTOM_PARTS}
        for part in CUSTOM_PARTS:
            value = getattr(self, part)
            out[part] = None if value is None else _qualified_name(value)
        return out

    @classmethod
    def from_dict(cls, data: dict) -> Recipe:
        """The numeric recipe of a saved model (custom parts are code: they cannot be restored from a file)."""
        known = {f.name for f in fields(cls)} - set(CUSTOM_PARTS)
        return cls(**{k: v for k, v in data.items() if k in known})

    def sha256(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()

    def loss_value(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The recipe's loss on a batch (labels moved to the logits' device)."""
        labels = labels.to(logits.device, non_blocking=True)
        return self.loss(logits, labels) if self.loss is not None else F.cross_entropy(logits, labels)

    def make_optimizer(
        self, parameters, lr: float | None = None, momentum: float | None = None, weight_decay: float | None = None
    ):
        """The recipe's optimiser; methods pass their own ``lr`` (and SGD settings for the built-in SGD)."""
        lr = self.lr if lr is None else lr
        if self.optimizer_factory is not None:
            return self.optimizer_factory(parameters, lr)
        weight_decay = self.weight_decay if weight_decay is None else weight_decay
        if self.optimizer == "adam":
            return torch.optim.Adam(parameters, lr=lr, weight_decay=weight_decay)
        momentum = self.momentum if momentum is None else momentum
        return torch.optim.SGD(parameters, lr=lr, momentum=momentum, weight_decay=weight_decay)

    def make_scheduler(self, optimizer: torch.optim.Optimizer, total_steps: int):
        if self.scheduler_factory is not None:
            return self.scheduler_factory(optimizer, total_steps)
        if self.schedule == "cosine":
            return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)


CUSTOM_PARTS = ("loss", "optimizer_factory", "scheduler_factory", "train_step")


def _qualified_name(fn: Callable) -> str:
    module = getattr(fn, "__module__", None) or type(fn).__module__
    name = getattr(fn, "__qualname__", None) or type(fn).__qualname__
    return f"{module}.{name}"


def train(model: nn.Module, dataset: Dataset, recipe: Recipe, seed: int = 0, description: str = "train") -> nn.Module:
    """Train ``model`` in place on ``dataset`` with ``recipe``, where the model is; shuffling and init noise follow ``seed``.

    ``model`` may be any classifier (see :class:`~erasekit.models.adapter.Classifier`);
    ``dataset`` anything :func:`~erasekit.data.as_dataset` accepts.
    """
    network = as_classifier(model)
    dataset = as_dataset(dataset)
    shuffle = generator(seed)
    optimizer = recipe.make_optimizer(network.parameters())
    steps = recipe.epochs * num_batches(dataset, recipe.batch_size)
    scheduler = recipe.make_scheduler(optimizer, steps)
    network.train()
    with seeded(seed), progress.step(description, steps) as advance:  # dropout-style noise follows the seed
        for _ in range(recipe.epochs):
            for x, y in batches(dataset, recipe.batch_size, shuffle=True, generator=shuffle):
                if recipe.train_step is not None:
                    recipe.train_step(network, x, y, optimizer)
                else:
                    optimizer.zero_grad(set_to_none=True)
                    recipe.loss_value(network(x), y).backward()
                    optimizer.step()
                scheduler.step()
                advance(1)
    network.eval()
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
