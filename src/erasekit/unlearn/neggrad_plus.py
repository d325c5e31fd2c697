"""NegGrad+ — gradient difference between retain and forget losses (Kurmanji et al., "Towards Unbounded Machine Unlearning", NeurIPS 2023)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar

from erasekit.core import progress
from erasekit.core.params import UNIT_INTERVAL
from erasekit.core.rng import generator as seeded_generator
from erasekit.data.dataset import num_batches
from erasekit.training.steps import endless, shuffled
from erasekit.unlearn.base import SGDParams, UnlearningTask, register


@dataclass(frozen=True)
class NegGradPlusParams(SGDParams):
    """loss = α·ℓ(retain batch) − (1−α)·ℓ(forget batch). Defaults: α 0.99 (reference range
    0.95–0.999), lr 0.01, 5 epochs over the retain set."""

    epochs: int = 5
    alpha: Annotated[float, UNIT_INTERVAL] = 0.99

    SEARCH_SPACE: ClassVar[Mapping[str, Sequence[Any]]] = {**SGDParams.SEARCH_SPACE, "alpha": (0.9, 0.95, 0.99, 0.999)}


@register("neggrad_plus", NegGradPlusParams)
def neggrad_plus(task: UnlearningTask, params: NegGradPlusParams):
    """Descend on retain batches while ascending on cycled forget batches (gradient difference)."""
    model = task.copy_model().train()
    optimizer = task.optimizer(model, params.lr, params.momentum, params.weight_decay)
    generator = seeded_generator(task.seed)
    forget_batches = endless(task.forget_set, params.batch_size, generator)
    steps = params.epochs * num_batches(task.retain_set, params.batch_size)
    with progress.step("neggrad_plus", steps) as advance:
        for _ in range(params.epochs):
            for x_r, y_r in shuffled(task.retain_set, params.batch_size, generator):
                x_f, y_f = next(forget_batches)
                optimizer.zero_grad(set_to_none=True)
                loss = params.alpha * task.loss(model(x_r), y_r) - (1 - params.alpha) * task.loss(model(x_f), y_f)
                loss.backward()
                optimizer.step()
                advance(1)
            if task.should_stop(model):
                break
    return model
