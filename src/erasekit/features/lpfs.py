"""LPFS: smoothed-L0 field gates x²/(x²+ε) with ε annealed towards 0 (Guo et al. 2022)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from erasekit.features._gates import GateSearcher, SearchBudget, search
from erasekit.features.base import FieldError, FieldScores, SelectionData, register_ranker


@dataclass(frozen=True)
class LPFSParams:
    """Gate g(x) = x²/(x²+ε), x_f initialised to 1, ε from ``eps0`` 0.1 multiplied by ``eps_decay``
    0.9978 every ``decay_every`` 100 steps (the paper's schedule); loss + λ·Σ g. Field score = g at the end."""

    search_epochs: int = 4
    eps0: float = 0.1
    eps_decay: float = 0.9978
    decay_every: int = 100
    lam: float = 1e-3
    gate_lr: float = 1e-2

    def __post_init__(self):
        if self.search_epochs < 1 or self.eps0 <= 0 or not 0 < self.eps_decay <= 1 or self.decay_every < 1 or self.gate_lr <= 0:
            raise FieldError(f"LPFS parameters out of range: {self}")


class LPFSGates(GateSearcher):
    def __init__(self, n_fields: int, params: LPFSParams):
        self.x = torch.ones(n_fields, requires_grad=True)
        self.params = params
        self.eps = params.eps0

    def parameters(self):
        return [self.x]

    def gate(self, model, codes, embeddings, training):
        return self.x ** 2 / (self.x ** 2 + self.eps)

    def penalty(self):
        return self.params.lam * (self.x ** 2 / (self.x ** 2 + self.eps)).sum()

    def after_step(self, step, total_steps):
        if step % self.params.decay_every == 0:
            self.eps *= self.params.eps_decay


@register_ranker("lpfs", "gate", LPFSParams)
def lpfs_fields(data: SelectionData, params: LPFSParams, seed: int) -> FieldScores:
    """LPFS smoothed-L0 gate value per field after the search."""
    gates = LPFSGates(len(data.names), params)
    search(data, gates, SearchBudget(params.search_epochs, params.gate_lr), seed, "LPFS search")
    with torch.no_grad():
        scores = gates.gate(None, None, None, False).numpy().astype(np.float64)
    return FieldScores(scores, extra={"final_eps": gates.eps})
