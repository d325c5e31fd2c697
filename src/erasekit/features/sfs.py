"""SFS (single-shot feature selection): |∂L/∂m_f| of an all-ones field mask, averaged over minibatches (Wang et al. 2023)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from erasekit.features.base import FieldError, FieldScores, SelectionData, register_ranker
from erasekit.models.ctr import CTRModel, CTRRecipe, minibatches, tensors, train_ctr


@dataclass(frozen=True)
class SFSParams:
    """Single shot at initialisation (``warmup_epochs`` 0, as in the paper — no training);
    gradients averaged over ``max_batches`` training minibatches."""

    warmup_epochs: int = 0
    max_batches: int = 50

    def __post_init__(self):
        if self.warmup_epochs < 0 or self.max_batches < 1:
            raise FieldError(f"SFS needs warmup_epochs ≥ 0 and max_batches ≥ 1; got {self}")


@register_ranker("sfs", "gate", SFSParams)
def sfs_fields(data: SelectionData, params: SFSParams, seed: int) -> FieldScores:
    """SFS mean |∂L/∂m_f| at a field mask of ones (single shot)."""
    torch.manual_seed(seed)
    model = CTRModel(data.train.fields, data.spec)
    if params.warmup_epochs:
        recipe = CTRRecipe(params.warmup_epochs, data.recipe.batch_size, data.recipe.lr, data.recipe.weight_decay)
        train_ctr(model, data.train, None, recipe, seed=seed, description="SFS warm-up")
    codes, numeric, labels = tensors(data.train)
    mask = torch.ones(len(data.names), requires_grad=True)
    loss_fn = nn.BCEWithLogitsLoss()
    total = torch.zeros(len(data.names))
    batches = 0
    model.eval()
    for index in minibatches(len(data.train), data.recipe.batch_size, torch.Generator().manual_seed(seed)):
        loss_fn(model(codes[index], numeric[index], mask), labels[index]).backward()
        total += mask.grad.abs()
        mask.grad = None
        batches += 1
        if batches == params.max_batches:
            break
    return FieldScores((total / batches).numpy().astype(np.float64))
