"""AutoField: a keep/drop Gumbel-softmax gate per field, learned bi-level (Wang et al., "AutoField", SIGIR 2022)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from erasekit.features.base import POSITIVE_INT, POSITIVE_REAL, FieldScores, SelectionData, register_selector
from erasekit.features.gates import GateSearcher, GateSelector, SearchBudget, search


class AutoFieldGates(GateSearcher):
    bilevel = True

    def __init__(self, n_fields: int, params: AutoFieldSelector, seed: int):
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


@register_selector("autofield")
class AutoFieldSelector(GateSelector):
    """AutoField keep probability per field after a bi-level Gumbel-softmax search (Wang et al., SIGIR 2022).

    Gate logits α_f ∈ R² (keep, drop), Gumbel-softmax temperature ``tau``; α is updated on
    validation minibatches (first-order DARTS-style bi-level search, as in the paper) with
    Adam lr ``gate_lr``. Field score = softmax(α_f)[keep].
    """

    _parameter_constraints: ClassVar[dict] = {
        **GateSelector._parameter_constraints,
        "search_epochs": [POSITIVE_INT],
        "tau": [POSITIVE_REAL],
        "gate_lr": [POSITIVE_REAL],
    }

    def __init__(
        self,
        search_epochs=4,
        tau=1.0,
        gate_lr=1e-2,
        categorical=(),
        validation_fraction=0.15,
        backbone=None,
        recipe=None,
        k=None,
        random_state=0,
    ):
        self.search_epochs = search_epochs
        self.tau = tau
        self.gate_lr = gate_lr
        self._store_context(categorical, validation_fraction, backbone, recipe, k, random_state)

    def score_fields(self, data: SelectionData) -> FieldScores:
        gates = AutoFieldGates(len(data.names), self, self.random_state)
        search(data, gates, SearchBudget(self.search_epochs, self.gate_lr), self.random_state, "AutoField search")
        return FieldScores(gates.keep_probability().detach().numpy().astype(np.float64))
