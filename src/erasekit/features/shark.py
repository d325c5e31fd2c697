"""SHARK: first-order Taylor estimate of the loss change when a field's embedding is replaced by its mean (Zhang et al., "SHARK", 2023)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
from torch import nn

from erasekit.core.device import model_device
from erasekit.features.base import POSITIVE_INT, FieldScores, SelectionData, register_selector
from erasekit.features.gates import GateSelector
from erasekit.models.ctr import CTRModel, fresh_model, tensors, train_ctr


@torch.no_grad()
def _mean_embeddings(model: CTRModel, codes, numeric, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    sums_e, sums_f = [], []
    for start in range(0, len(codes), batch_size):
        e, f = model.embed(codes[start : start + batch_size], numeric[start : start + batch_size])
        sums_e.append(e.sum(0))
        sums_f.append(f.sum(0))
    return torch.stack(sums_e).sum(0) / len(codes), torch.stack(sums_f).sum(0) / len(codes)


def shark_scores(model: CTRModel, data: SelectionData, batch_size: int = 4096) -> np.ndarray:
    device = model_device(model)
    codes, numeric, _ = tensors(data.train, device)
    mean_e, mean_f = _mean_embeddings(model, codes, numeric, batch_size)
    v_codes, v_numeric, v_labels = tensors(data.valid, device)
    loss_fn = nn.BCEWithLogitsLoss(reduction="sum")
    change = torch.zeros(len(data.names), device=device)
    model.eval()
    for start in range(0, len(v_codes), batch_size):
        e, f = model.embed(v_codes[start : start + batch_size], v_numeric[start : start + batch_size])
        e, f = e.detach().requires_grad_(True), f.detach().requires_grad_(True)
        grad_e, grad_f = torch.autograd.grad(loss_fn(model.head(e, f), v_labels[start : start + batch_size]), (e, f))
        with torch.no_grad():
            change += (grad_e * (mean_e - e)).sum(dim=(0, 2)) + (grad_f * (mean_f - f)).sum(0)
    return (change.abs() / len(v_codes)).cpu().numpy().astype(np.float64)


@register_selector("shark")
class SharkSelector(GateSelector):
    """SHARK Taylor-expansion loss change of mean-replacing each field's embedding (Zhang et al., 2023).

    The backbone is trained once (the recipe, early stopping on validation); scores are
    |Σ_i ∂L/∂e_if · (ē_f − e_if)| / n over the validation rows, ē_f the field's mean
    embedding on the training rows, in minibatches of ``batch_size``.
    """

    _parameter_constraints: ClassVar[dict] = {**GateSelector._parameter_constraints, "batch_size": [POSITIVE_INT]}

    def __init__(
        self, batch_size=4096, categorical=(), validation_fraction=0.15, backbone=None, recipe=None, k=None, random_state=0
    ):
        self.batch_size = batch_size
        self._store_context(categorical, validation_fraction, backbone, recipe, k, random_state)

    def score_fields(self, data: SelectionData) -> FieldScores:
        seed = self.random_state
        model = train_ctr(
            fresh_model(data.train.fields, data.spec, seed),
            data.train,
            data.valid,
            data.recipe,
            seed=seed,
            description="SHARK backbone",
        )
        return FieldScores(shark_scores(model, data, self.batch_size))
