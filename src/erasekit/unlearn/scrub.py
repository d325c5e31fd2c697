"""SCRUB — teacher–student unlearning with max-steps on the forget set (Kurmanji et al., "Towards Unbounded Machine Unlearning", NeurIPS 2023)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar

import torch
import torch.nn.functional as F

from erasekit.core import progress
from erasekit.core.errors import MethodError
from erasekit.core.params import AT_LEAST_ONE, NON_NEGATIVE, POSITIVE, Params
from erasekit.core.rng import generator as seeded_generator
from erasekit.data.dataset import num_batches
from erasekit.training.steps import shuffled
from erasekit.unlearn.base import UnlearningTask, register


@dataclass(frozen=True)
class SCRUBParams(Params):
    """Small-scale defaults from the SCRUB code: Adam lr 5e-4, 10 epochs, 3 max-step epochs,
    temperature 4, gamma 1 (cross-entropy weight), alpha 0.5 (distillation weight)."""

    epochs: Annotated[int, AT_LEAST_ONE] = 10
    max_steps: Annotated[int, NON_NEGATIVE] = 3
    lr: Annotated[float, POSITIVE] = 5e-4
    temperature: Annotated[float, POSITIVE] = 4.0
    gamma: Annotated[float, NON_NEGATIVE] = 1.0
    alpha: Annotated[float, NON_NEGATIVE] = 0.5
    batch_size: Annotated[int, AT_LEAST_ONE] = 64

    SEARCH_SPACE: ClassVar[Mapping[str, Sequence[Any]]] = {
        "lr": (1e-4, 5e-4, 1e-3),
        "epochs": (2, 5, 10),
        "max_steps": (1, 2, 3),
        "alpha": (0.1, 0.5, 1.0),
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 <= self.max_steps <= self.epochs:
            raise MethodError(f"SCRUBParams.max_steps must be in [0, epochs], got {self.max_steps}")


def distill_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """KL between teacher and student distributions at temperature T, scaled by T² (Hinton)."""
    log_student = F.log_softmax(student_logits / temperature, dim=1)
    teacher = F.softmax(teacher_logits / temperature, dim=1)
    return F.kl_div(log_student, teacher, reduction="batchmean") * temperature**2


@register("scrub", SCRUBParams)
def scrub(task: UnlearningTask, params: SCRUBParams):
    """Student moves away from the teacher on forget data while matching it on retain data."""
    teacher = task.copy_model().eval()
    student = task.copy_model().train()
    # the paper's optimiser is Adam; a recipe that brings its own optimiser is used instead
    factory = task.recipe.optimizer_factory
    optimizer = factory(student.parameters(), params.lr) if factory else torch.optim.Adam(student.parameters(), lr=params.lr)
    generator = seeded_generator(task.seed)
    steps = params.max_steps * num_batches(task.forget_set, params.batch_size) + params.epochs * num_batches(
        task.retain_set, params.batch_size
    )
    with progress.step("scrub", steps) as advance:
        for epoch in range(params.epochs):
            if epoch < params.max_steps:
                for x, _ in shuffled(task.forget_set, params.batch_size, generator):
                    with torch.no_grad():
                        target = teacher(x)
                    optimizer.zero_grad(set_to_none=True)
                    (-distill_kl(student(x), target, params.temperature)).backward()
                    optimizer.step()
                    advance(1)
            for x, y in shuffled(task.retain_set, params.batch_size, generator):
                with torch.no_grad():
                    target = teacher(x)
                optimizer.zero_grad(set_to_none=True)
                logits = student(x)
                loss = params.gamma * task.loss(logits, y) + params.alpha * distill_kl(logits, target, params.temperature)
                loss.backward()
                optimizer.step()
                advance(1)
            if task.should_stop(student):
                break
    return student
