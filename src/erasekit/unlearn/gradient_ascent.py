"""Gradient ascent (GA / NegGrad) on the forget set (Thudi et al., "Unrolling SGD", EuroS&P 2022; Golatkar et al., CVPR 2020)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from erasekit.training.steps import sgd_epochs
from erasekit.unlearn.base import SGDParams, UnlearningTask, register


@dataclass(frozen=True)
class GradientAscentParams(SGDParams):
    """Reference code uses lr 1e-4 for 5 epochs; its maintainers advise 5e-4–1e-3 when nothing
    is forgotten, which is the case for small models, so the default here is 1e-3 (no weight
    decay). Runs too long, it collapses the model (the report flags NaN weights)."""

    epochs: int = 5
    lr: float = 1e-3
    weight_decay: float = 0.0

    SEARCH_SPACE: ClassVar[Mapping[str, Sequence[Any]]] = {"lr": (1e-5, 1e-4, 3e-4, 1e-3, 3e-3), "epochs": (1, 2, 3, 5)}


@register("gradient_ascent", GradientAscentParams)
def gradient_ascent(task: UnlearningTask, params: GradientAscentParams):
    """Maximise the loss on the forget set (step on −ℓ); collapses the model if run too long."""
    model = task.copy_model()
    return sgd_epochs(
        model,
        task.forget_set,
        params,
        task.seed,
        "gradient_ascent",
        lambda model, x, y: -task.loss(model(x), y),
        stop=task.should_stop,
        optimizer=task.optimizer(model, params.lr, params.momentum, params.weight_decay),
    )
