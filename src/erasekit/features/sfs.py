"""SFS (single-shot feature selection): |∂L/∂m_f| of an all-ones field mask, averaged over minibatches (Wang et al. 2023)."""

from __future__ import annotations

from numbers import Integral
from typing import ClassVar

import numpy as np
import torch
from sklearn.utils._param_validation import Interval
from torch import nn

from erasekit.core.rng import generator as seeded_generator
from erasekit.core.rng import seeded
from erasekit.features.base import POSITIVE_INT, FieldScores, SelectionData, register_selector
from erasekit.features.gates import GateSelector
from erasekit.models.ctr import CTRModel, CTRRecipe, minibatches, tensors, train_ctr


@register_selector("sfs")
class SFSSelector(GateSelector):
    """SFS mean |∂L/∂m_f| at a field mask of ones, single shot (Wang et al., 2023).

    Single shot at initialisation (``warmup_epochs`` 0, as in the paper — no training);
    gradients averaged over ``max_batches`` training minibatches.
    """

    _parameter_constraints: ClassVar[dict] = {
        **GateSelector._parameter_constraints,
        "warmup_epochs": [Interval(Integral, 0, None, closed="left")],
        "max_batches": [POSITIVE_INT],
    }

    def __init__(
        self,
        warmup_epochs=0,
        max_batches=50,
        categorical=(),
        validation_fraction=0.15,
        backbone=None,
        recipe=None,
        k=None,
        random_state=0,
    ):
        self.warmup_epochs = warmup_epochs
        self.max_batches = max_batches
        self._store_context(categorical, validation_fraction, backbone, recipe, k, random_state)

    def score_fields(self, data: SelectionData) -> FieldScores:
        seed = self.random_state
        with seeded(seed):
            model = CTRModel(data.train.fields, data.spec)
        if self.warmup_epochs:
            recipe = CTRRecipe(self.warmup_epochs, data.recipe.batch_size, data.recipe.lr, data.recipe.weight_decay)
            train_ctr(model, data.train, None, recipe, seed=seed, description="SFS warm-up")
        codes, numeric, labels = tensors(data.train)
        mask = torch.ones(len(data.names), requires_grad=True)
        loss_fn = nn.BCEWithLogitsLoss()
        total = torch.zeros(len(data.names))
        batches = 0
        model.eval()
        for index in minibatches(len(data.train), data.recipe.batch_size, seeded_generator(seed)):
            (grad,) = torch.autograd.grad(loss_fn(model(codes[index], numeric[index], mask), labels[index]), mask)
            total += grad.abs()
            batches += 1
            if batches == self.max_batches:
                break
        return FieldScores((total / batches).numpy().astype(np.float64))
