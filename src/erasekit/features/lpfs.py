"""LPFS: smoothed-L0 field gates x²/(x²+ε) with ε annealed towards 0 (Guo et al., "LPFS", 2022)."""

from __future__ import annotations

from numbers import Real
from typing import ClassVar

import numpy as np
import torch
from sklearn.utils._param_validation import Interval

from erasekit.features.base import POSITIVE_INT, POSITIVE_REAL, FieldScores, SelectionData, register_selector
from erasekit.features.gates import GateSearcher, GateSelector, SearchBudget, search


class LPFSGates(GateSearcher):
    def __init__(self, n_fields: int, params: LPFSSelector):
        self.x = torch.ones(n_fields, requires_grad=True)
        self.params = params
        self.eps = params.eps0

    def parameters(self):
        return [self.x]

    def gate(self, model, codes, embeddings, training):
        return self.x**2 / (self.x**2 + self.eps)

    def penalty(self):
        return self.params.lam * (self.x**2 / (self.x**2 + self.eps)).sum()

    def after_step(self, step, total_steps):
        if step % self.params.decay_every == 0:
            self.eps *= self.params.eps_decay


@register_selector("lpfs")
class LPFSSelector(GateSelector):
    """LPFS smoothed-L0 gate value per field after the search (Guo et al., "LPFS", 2022).

    Gate g(x) = x²/(x²+ε), x_f initialised to 1, ε from ``eps0`` 0.1 multiplied by
    ``eps_decay`` 0.9978 every ``decay_every`` 100 steps (the paper's schedule); loss + λ·Σ g.
    Field score = g at the end.
    """

    _parameter_constraints: ClassVar[dict] = {
        **GateSelector._parameter_constraints,
        "search_epochs": [POSITIVE_INT],
        "eps0": [POSITIVE_REAL],
        "eps_decay": [Interval(Real, 0, 1, closed="right")],
        "decay_every": [POSITIVE_INT],
        "lam": [Interval(Real, 0, None, closed="left")],
        "gate_lr": [POSITIVE_REAL],
    }

    def __init__(
        self,
        search_epochs=4,
        eps0=0.1,
        eps_decay=0.9978,
        decay_every=100,
        lam=1e-3,
        gate_lr=1e-2,
        categorical=(),
        validation_fraction=0.15,
        backbone=None,
        recipe=None,
        k=None,
        random_state=0,
    ):
        self.search_epochs = search_epochs
        self.eps0 = eps0
        self.eps_decay = eps_decay
        self.decay_every = decay_every
        self.lam = lam
        self.gate_lr = gate_lr
        self._store_context(categorical, validation_fraction, backbone, recipe, k, random_state)

    def score_fields(self, data: SelectionData) -> FieldScores:
        gates = LPFSGates(len(data.names), self)
        search(data, gates, SearchBudget(self.search_epochs, self.gate_lr), self.random_state, "LPFS search")
        with torch.no_grad():
            scores = gates.gate(None, None, None, False).numpy().astype(np.float64)
        return FieldScores(scores, extra={"final_eps": gates.eps})
