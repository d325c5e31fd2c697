"""AutoField: a keep/drop Gumbel-softmax gate per field, learned bi-level (Wang et al. 2022)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from erasekit.features._gates import GateSearcher, SearchBudget, search
from erasekit.features.base import FieldError, FieldScores, SelectionData, register_ranker


@dataclass(frozen=True)
class AutoFieldParams:
    """Gate logits α_f ∈ R² (keep, drop), Gumbel-softmax temperature ``tau``; α is updated on
    validation minibatches (first-order DARTS-style bi-level search, as in the paper) with Adam
    lr ``gate_lr``. Field score = softmax(α_f)[keep]."""

    search_epochs: int = 4
    tau: float = 1.0
    gate_lr: float = 1e-2

    def __post_init__(self):
        if self.search_epochs < 1 or self.tau <= 0 or self.gate_lr <= 0:
            raise FieldError(f"AutoField needs search_epochs ≥ 1, tau > 0, gate_lr > 0; got {self}")


class AutoFieldGates(GateSearcher):
    bilevel = True

    def __init__(self, n_fields: int, params: AutoFieldParams, seed: int):
        self.alpha = torch.zeros(n_fields, 2, requires_grad=True)
        self.tau = params.tau
        self.generator = torch.Generator().manual_seed(seed + 1)

    def parameters(self):
        return [self.alpha]

    def gate(self, model, codes, embeddings, training):
        if not training:
            return self.keep_probability()
        uniform = torch.rand(self.alpha.shape, generator=self.generator).clamp(1e-9, 1 - 1e-9)
        gumbel = -torch.log(-torch.log(uniform))
        return F.softmax((self.alpha + gumbel) / self.tau, dim=1)[:, 0]

    def keep_probability(self) -> torch.Tensor:
        return F.softmax(self.alpha, dim=1)[:, 0]


@register_ranker("autofield", "gate", AutoFieldParams)
def autofield_fields(data: SelectionData, params: AutoFieldParams, seed: int) -> FieldScores:
    """AutoField keep probability per field after the bi-level Gumbel-softmax search."""
    gates = AutoFieldGates(len(data.names), params, seed)
    search(data, gates, SearchBudget(params.search_epochs, params.gate_lr), seed, "AutoField search")
    return FieldScores(gates.keep_probability().detach().numpy().astype(np.float64))
