"""AdaFS: a controller network weights fields per sample (Lin et al. 2022)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from erasekit.features._gates import GateSearcher, SearchBudget, mean_gate, search
from erasekit.features.base import FieldError, FieldScores, SelectionData, register_ranker


@dataclass(frozen=True)
class AdaFSParams:
    """Controller: field embeddings → ``hidden`` (16, the paper's) → ReLU → F → softmax × F, so
    weights average 1. Trained jointly with the backbone. Field score = mean weight on the
    validation rows."""

    search_epochs: int = 4
    hidden: int = 16
    gate_lr: float = 1e-3

    def __post_init__(self):
        if self.search_epochs < 1 or self.hidden < 1 or self.gate_lr <= 0:
            raise FieldError(f"AdaFS needs search_epochs ≥ 1, hidden ≥ 1, gate_lr > 0; got {self}")


class AdaFSController(GateSearcher):
    def __init__(self, n_fields: int, embed_dim: int, params: AdaFSParams):
        self.net = nn.Sequential(nn.Linear(n_fields * embed_dim, params.hidden), nn.ReLU(), nn.Linear(params.hidden, n_fields))
        self.n_fields = n_fields

    def parameters(self):
        return list(self.net.parameters())

    def gate(self, model, codes, embeddings, training):
        return torch.softmax(self.net(embeddings.flatten(1)), dim=1) * self.n_fields


@register_ranker("adafs", "gate", AdaFSParams)
def adafs_fields(data: SelectionData, params: AdaFSParams, seed: int) -> FieldScores:
    """AdaFS controller weight per field, averaged over validation rows."""
    torch.manual_seed(seed)
    controller = AdaFSController(len(data.names), data.spec.embed_dim, params)
    model = search(data, controller, SearchBudget(params.search_epochs, params.gate_lr), seed, "AdaFS search")
    return FieldScores(mean_gate(model, controller, data))
