"""ℓ1-sparse unlearning, optionally after one-shot magnitude pruning (Jia et al., "Model Sparsity Can Simplify Machine Unlearning", NeurIPS 2023)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar

import torch
from torch import nn

from erasekit.core import progress
from erasekit.core.params import NON_NEGATIVE, Range
from erasekit.core.rng import generator as seeded_generator
from erasekit.data.dataset import num_batches
from erasekit.training.steps import shuffled
from erasekit.unlearn.base import SGDParams, UnlearningTask, register


@dataclass(frozen=True)
class L1SparseParams(SGDParams):
    """min ℓ(retain) + γ_t‖θ‖₁ from θ₀, γ_t decaying linearly to 0 over the epochs.

    Defaults: 10 epochs, lr 0.01 (reference code); γ = 5e-4 chosen for the small bundled
    models (the paper searches γ; record what you use). ``prune_ratio`` > 0 first zeroes
    that global fraction of the smallest-magnitude weights of θ₀ (weights of rank ≥ 2, i.e.
    conv/linear kernels; biases kept) and keeps them at zero ("prune first, then unlearn").
    """

    weight_decay: float = 0.0  # the ℓ1 term replaces weight decay
    gamma: Annotated[float, NON_NEGATIVE] = 5e-4
    prune_ratio: Annotated[float, Range(0.0, 1.0, high_open=True)] = 0.0

    SEARCH_SPACE: ClassVar[Mapping[str, Sequence[Any]]] = {**SGDParams.SEARCH_SPACE, "gamma": (1e-5, 1e-4, 5e-4, 1e-3)}


def magnitude_prune(model: nn.Module, ratio: float) -> dict[str, torch.Tensor]:
    """Zero the globally smallest ``ratio`` of weight-matrix entries in place; returns keep masks."""
    weights = {name: p for name, p in model.named_parameters() if p.ndim >= 2}
    magnitudes = torch.cat([p.detach().abs().flatten() for p in weights.values()])
    n_prune = int(ratio * magnitudes.numel())
    if n_prune == 0:
        return {name: torch.ones_like(p, dtype=torch.bool) for name, p in weights.items()}
    threshold = magnitudes.kthvalue(n_prune).values
    masks = {}
    with torch.no_grad():
        for name, p in weights.items():
            masks[name] = p.abs() > threshold
            p.mul_(masks[name])
    return masks


@register("l1_sparse", L1SparseParams)
def l1_sparse(task: UnlearningTask, params: L1SparseParams):
    """Fine-tune on the retain set with a decaying ℓ1 penalty (optionally prune θ₀ first)."""
    model = task.copy_model()
    masks = magnitude_prune(model, params.prune_ratio) if params.prune_ratio > 0 else {}
    named = dict(model.named_parameters())
    optimizer = task.optimizer(model, params.lr, params.momentum, params.weight_decay)
    generator = seeded_generator(task.seed)
    model.train()
    steps = params.epochs * num_batches(task.retain_set, params.batch_size)
    with progress.step("l1_sparse", steps) as advance:
        for epoch in range(params.epochs):
            gamma = params.gamma * (1.0 - epoch / params.epochs)
            for x, y in shuffled(task.retain_set, params.batch_size, generator):
                optimizer.zero_grad(set_to_none=True)
                l1 = sum(p.abs().sum() for p in model.parameters())
                (task.loss(model(x), y) + gamma * l1).backward()
                optimizer.step()
                with torch.no_grad():
                    for name, keep in masks.items():  # pruned weights stay exactly zero
                        named[name].mul_(keep)
                        state = optimizer.state.get(named[name], {})
                        if "momentum_buffer" in state and state["momentum_buffer"] is not None:
                            state["momentum_buffer"].mul_(keep)
                advance(1)
            if task.should_stop(model):
                break
    return model
