"""AdaFS: a controller network weights fields per sample (Lin et al., "AdaFS", KDD 2022)."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from erasekit.core.rng import seeded
from erasekit.features.base import POSITIVE_INT, POSITIVE_REAL, FieldScores, SelectionData, register_selector
from erasekit.features.gates import GateSearcher, GateSelector, SearchBudget, mean_gate, search


class AdaFSController(GateSearcher):
    def __init__(self, n_fields: int, embed_dim: int, params: AdaFSSelector):
        self.net = nn.Sequential(nn.Linear(n_fields * embed_dim, params.hidden), nn.ReLU(), nn.Linear(params.hidden, n_fields))
        self.n_fields = n_fields

    def parameters(self):
        return list(self.net.parameters())

    def gate(self, model, codes, embeddings, training):
        return torch.softmax(self.net(embeddings.flatten(1)), dim=1) * self.n_fields


@register_selector("adafs")
class AdaFSSelector(GateSelector):
    """AdaFS controller weight per field, averaged over validation rows (Lin et al., KDD 2022).

    Controller: field embeddings → ``hidden`` (16, the paper's) → ReLU → F → softmax × F, so
    weights average 1, trained jointly with the backbone (Adam lr ``gate_lr``).
    """

    _parameter_constraints: ClassVar[dict] = {
        **GateSelector._parameter_constraints,
        "search_epochs": [POSITIVE_INT],
        "hidden": [POSITIVE_INT],
        "gate_lr": [POSITIVE_REAL],
    }

    def __init__(
        self,
        search_epochs=4,
        hidden=16,
        gate_lr=1e-3,
        categorical=(),
        validation_fraction=0.15,
        backbone=None,
        recipe=None,
        k=None,
        random_state=0,
    ):
        self.search_epochs = search_epochs
        self.hidden = hidden
        self.gate_lr = gate_lr
        self._store_context(categorical, validation_fraction, backbone, recipe, k, random_state)

    def score_fields(self, data: SelectionData) -> FieldScores:
        with seeded(self.random_state):
            controller = AdaFSController(len(data.names), data.spec.embed_dim, self)
        model = search(data, controller, SearchBudget(self.search_epochs, self.gate_lr), self.random_state, "AdaFS search")
        return FieldScores(mean_gate(model, controller, data))
