"""The gate-based family: selectors that learn inside a CTR backbone, and the search loop they share.

:class:`GateSelector` is the base of OptFS, AutoField, AdaFS, LPFS, SHARK and SFS: each scores
fields from :class:`~erasekit.features.base.SelectionData` (the field tables and the backbone);
fitted on a plain matrix it first splits it into field tables. A gate searcher owns some
parameters and maps a minibatch's field embeddings to field weights ([F] or [n, F]); the loop
trains the CTR backbone and the gate jointly on the training split (or, for bi-level methods,
the gate on validation minibatches).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from numbers import Integral
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from erasekit.core import progress
from erasekit.core.rng import generator as seeded_generator
from erasekit.core.rng import seeded
from erasekit.features.base import FRACTION_CONSTRAINT, Family, FieldScores, RankingSelector, SelectionData
from erasekit.models.ctr import CTRModel, CTRRecipe, CTRSpec, check_binary, minibatches, tensors


class GateSelector(RankingSelector):
    """A selector that needs the field tables and the CTR backbone, not just one column per field.

    Subclasses implement :meth:`score_fields`. ``fit(X, y)`` treats the ``categorical``
    columns of ``X`` as integer codes, holds out ``validation_fraction`` of the rows
    (stratified) and trains the backbone ``backbone``/``recipe`` (defaults: DeepFM, the ERASE
    recipe); :meth:`rank_fields` uses the table's own splits and backbone.
    """

    family: ClassVar[Family] = "gate"
    tasks = frozenset({"binary"})  # the CTR backbones predict clicks
    _parameter_constraints: ClassVar[dict] = {
        **RankingSelector._parameter_constraints,
        "validation_fraction": [FRACTION_CONSTRAINT],
        "categorical": ["array-like"],
        "backbone": [CTRSpec, None],
        "recipe": [CTRRecipe, None],
        "random_state": [Integral],
    }

    def _store_context(self, categorical, validation_fraction, backbone, recipe, k, random_state) -> None:
        """Store the parameters every gate selector shares (scikit-learn reads them back by their ``__init__`` names)."""
        self.categorical = categorical
        self.validation_fraction = validation_fraction
        self.backbone = backbone
        self.recipe = recipe
        self.k = k
        self.random_state = random_state

    @abstractmethod
    def score_fields(self, data: SelectionData) -> FieldScores:
        """Scores (and optionally a ranking) of ``data``'s fields, in ``data.names`` order."""

    def _rank(self, X, y):
        data = SelectionData.from_matrix(
            X, y, tuple(self.categorical), self.validation_fraction, self.random_state, self.backbone, self.recipe
        )
        result = self.score_fields(data)
        self.extra_ = dict(result.extra)
        # field tables list categorical columns first: map the scores back to X's column order
        column = np.asarray([int(name[1:]) for name in data.names])
        scores = np.empty(X.shape[1])
        scores[column] = result.scores
        ranking = None
        if result.ranking is not None:
            ranking = np.empty(X.shape[1], dtype=np.int64)
            ranking[column] = result.ranking
        return scores, ranking

    def rank_fields(self, data: SelectionData) -> FieldScores:
        self.check_params()
        result = self.score_fields(data)
        self.n_features_in_ = len(data.names)
        self.k_ = self._resolve_k(len(data.names))
        self.extra_ = dict(result.extra)
        self._set_result(result.scores, result.ranking)
        return result


class GateSearcher(ABC):
    """Implement ``parameters`` and ``gate``; optionally override ``penalty``, ``after_step``, ``after_epoch``."""

    bilevel = False  # True: gate parameters are updated on validation minibatches only

    @abstractmethod
    def parameters(self) -> list[torch.Tensor]:
        """The gate's trainable tensors."""

    @abstractmethod
    def gate(self, model: CTRModel, codes: torch.Tensor, embeddings: torch.Tensor, training: bool) -> torch.Tensor:
        """Field weights [F] or [n, F] for a minibatch with field embeddings [n, F, d]."""

    def penalty(self) -> torch.Tensor:
        return torch.zeros(())

    def after_step(self, step: int, total_steps: int) -> None:
        pass

    def after_epoch(self, epoch: int, model: CTRModel) -> None:
        pass


@dataclass(frozen=True)
class SearchBudget:
    epochs: int
    gate_lr: float


def gated_logits(model: CTRModel, searcher: GateSearcher, codes, numeric, training: bool) -> torch.Tensor:
    embeddings, first = model.embed(codes, numeric)
    return model.gated_head(embeddings, first, searcher.gate(model, codes, embeddings, training))


def search(data: SelectionData, searcher: GateSearcher, budget: SearchBudget, seed: int, description: str) -> CTRModel:
    """Train a fresh backbone with ``searcher``'s gate for ``budget.epochs`` epochs; return the backbone."""
    check_binary(data.train)
    generator = seeded_generator(seed)
    with seeded(seed):
        model = CTRModel(data.train.fields, data.spec)
    codes, numeric, labels = tensors(data.train)
    v_codes, v_numeric, v_labels = tensors(data.valid)
    weights = torch.optim.Adam(model.parameters(), lr=data.recipe.lr, weight_decay=data.recipe.weight_decay)
    gates = torch.optim.Adam(searcher.parameters(), lr=budget.gate_lr)
    loss_fn = nn.BCEWithLogitsLoss()
    steps_per_epoch = -(-len(data.train) // data.recipe.batch_size)
    total = budget.epochs * steps_per_epoch
    step = 0
    with progress.step(description, total) as advance:
        for epoch in range(budget.epochs):
            model.train()
            valid_batches = iter(minibatches(len(data.valid), data.recipe.batch_size, generator)) if searcher.bilevel else None
            for index in minibatches(len(data.train), data.recipe.batch_size, generator):
                weights.zero_grad(set_to_none=True)
                gates.zero_grad(set_to_none=True)
                loss = loss_fn(gated_logits(model, searcher, codes[index], numeric[index], True), labels[index])
                if searcher.bilevel:
                    loss.backward()
                    weights.step()
                    gates.zero_grad(set_to_none=True)
                    v_index = next(valid_batches, None) if valid_batches is not None else None
                    if v_index is None:
                        valid_batches = iter(minibatches(len(data.valid), data.recipe.batch_size, generator))
                        v_index = next(valid_batches)
                    weights.zero_grad(set_to_none=True)
                    v_loss = loss_fn(gated_logits(model, searcher, v_codes[v_index], v_numeric[v_index], True), v_labels[v_index])
                    (v_loss + searcher.penalty()).backward()
                    gates.step()
                else:
                    (loss + searcher.penalty()).backward()
                    weights.step()
                    gates.step()
                step += 1
                searcher.after_step(step, total)
                advance(1)
            searcher.after_epoch(epoch, model)
    model.eval()
    return model


@torch.no_grad()
def mean_gate(model: CTRModel, searcher: GateSearcher, data: SelectionData, batch_size: int = 8192) -> np.ndarray:
    """Field weights averaged over the validation rows (per-sample gates) — a field score."""
    codes, numeric, _ = tensors(data.valid)
    total = torch.zeros(len(data.names))
    for start in range(0, len(data.valid), batch_size):
        embeddings, _ = model.embed(codes[start : start + batch_size], numeric[start : start + batch_size])
        gate = searcher.gate(model, codes[start : start + batch_size], embeddings, False)
        total += (gate if gate.dim() == 2 else gate.expand(len(embeddings), -1)).sum(0)
    return (total / len(data.valid)).numpy().astype(np.float64)
