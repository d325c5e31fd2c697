"""Retrain — the exact reference every approximate method is judged against (Bourtoule et al., "Machine Unlearning", IEEE S&P 2021)."""

from __future__ import annotations

from dataclasses import dataclass

from erasekit.core.params import Params
from erasekit.training import train
from erasekit.unlearn.base import UnlearningTask, register


@dataclass(frozen=True)
class RetrainParams(Params):
    """No parameters: the retrain reference uses the task's recipe (the original's)."""


@register("retrain", RetrainParams, exact=True, cacheable=True)
def retrain(task: UnlearningTask, params: RetrainParams):
    """Exact reference: fresh initialisation trained on the retain set with the original recipe."""
    model = task.fresh_model()
    return train(model, task.retain_set, task.recipe, seed=task.seed, description="retrain (exact reference)")
