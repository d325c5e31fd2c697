"""OptFS: learnable field- or value-level gates, learning by continuation, then rewind and retrain
(Lyu et al., "Optimizing Feature Set for Click-Through Rate Prediction", WWW 2023)."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from numbers import Integral, Real
from typing import ClassVar

import numpy as np
import torch
from sklearn.utils._param_validation import Interval, StrOptions

from erasekit.features.base import POSITIVE_INT, POSITIVE_REAL, FieldScores, SelectionData, register_selector
from erasekit.features.gates import GateSearcher, GateSelector, SearchBudget, search
from erasekit.models.ctr import CTRModel, Gate, fresh_model, train_ctr


class OptFSGates(GateSearcher):
    def __init__(self, data: SelectionData, params: OptFSSelector):
        self.params = params
        self.temperature = 1.0
        self.n_categorical = data.train.n_categorical
        n_numeric = len(data.names) - self.n_categorical
        if params.level == "field":
            self.n_value_gates = 0
            self.m = torch.full((len(data.names),), params.m_init, requires_grad=True)
        else:
            # One gate per value of each categorical field (offsets into one vector), then one per numeric field.
            sizes = [f.vocab_size for f in data.train.fields[: self.n_categorical]]
            self.offsets = torch.as_tensor(
                np.concatenate([[0], np.cumsum(sizes)[:-1]]) if sizes else np.zeros(0), dtype=torch.long
            )
            self.n_value_gates = int(sum(sizes))
            self.m = torch.full((self.n_value_gates + n_numeric,), params.m_init, requires_grad=True)
        self.norm = torch.sigmoid(torch.tensor(params.m_init))
        self.rewind_state: dict | None = None

    def parameters(self):
        return [self.m]

    def expand(self, values: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """Per-gate values → per-sample field values [n, F] (value level) or [F] (field level)."""
        if self.params.level == "field":
            return values
        cat = values[codes + self.offsets] if self.n_categorical else torch.zeros(len(codes), 0)
        num = values[self.n_value_gates :].expand(len(codes), -1)
        return torch.cat([cat, num], dim=1)

    def gate(self, model, codes, embeddings, training):
        return torch.sigmoid(self.temperature * self.expand(self.m, codes)) / self.norm

    def penalty(self):
        return self.params.lam * torch.sigmoid(self.temperature * self.m).sum()

    def after_step(self, step, total_steps):
        self.temperature = self.params.final_temp ** (step / total_steps)

    def after_epoch(self, epoch, model):
        if epoch + 1 == self.params.rewind_epoch:
            self.rewind_state = copy.deepcopy(model.state_dict())

    def keep_mask(self) -> np.ndarray:
        return (self.m.detach() > 0).numpy()


@dataclass(frozen=True)
class OptFSResult:
    """Field scores, the frozen keep-mask over gates, and (if retrained) the rewound-and-retrained model.

    Evaluate the retrained model with its mask: ``evaluate(result.model, table, gate=result.model.frozen_gate)``.
    """

    field_scores: np.ndarray
    kept_fields: tuple[str, ...]
    gate_mask: np.ndarray
    model: CTRModel | None


@register_selector("optfs")
class OptFSSelector(GateSelector):
    """OptFS gate values after the continuation search (field- or value-level; Lyu et al., WWW 2023).

    Gate g = σ(τ·m)/σ(m_init), τ growing geometrically 1 → ``final_temp``; loss + λ·Σσ(τ·m).
    Paper defaults: m_init 0.5, final_temp 200, λ 1e-8, rewind epoch 1 (its 20 search epochs
    at lr 1e-4 are tuned for Criteo's 45M rows). On tables of 10⁴–10⁵ rows the gates would
    barely move at that learning rate, so the gates here use Adam lr ``gate_lr`` 1e-2 and
    search for ``search_epochs`` 4 — about one backbone training. ``level="value"`` learns one
    gate per categorical value (and per numeric field); a field's score is then the share of
    training rows whose value keeps its gate open. :func:`optfs_select` also rewinds and
    retrains the backbone with the frozen mask.
    """

    _parameter_constraints: ClassVar[dict] = {
        **GateSelector._parameter_constraints,
        "level": [StrOptions({"field", "value"})],
        "search_epochs": [POSITIVE_INT],
        "m_init": [Interval(Real, None, None, closed="neither")],
        "final_temp": [Interval(Real, 1, None, closed="left")],
        "lam": [Interval(Real, 0, None, closed="left")],
        "gate_lr": [POSITIVE_REAL],
        "rewind_epoch": [Interval(Integral, 0, None, closed="left")],
    }

    def __init__(
        self,
        level="field",
        search_epochs=4,
        m_init=0.5,
        final_temp=200.0,
        lam=1e-8,
        gate_lr=1e-2,
        rewind_epoch=1,
        categorical=(),
        validation_fraction=0.15,
        backbone=None,
        recipe=None,
        k=None,
        random_state=0,
    ):
        self.level = level
        self.search_epochs = search_epochs
        self.m_init = m_init
        self.final_temp = final_temp
        self.lam = lam
        self.gate_lr = gate_lr
        self.rewind_epoch = rewind_epoch
        self._store_context(categorical, validation_fraction, backbone, recipe, k, random_state)

    def score_fields(self, data: SelectionData) -> FieldScores:
        result = optfs_select(data, self, self.random_state, retrain=False)
        return FieldScores(result.field_scores, extra={"fields_kept_by_mask": float(len(result.kept_fields))})


def optfs_select(data: SelectionData, params: OptFSSelector | None = None, seed: int = 0, retrain: bool = True) -> OptFSResult:
    """Search gates with ``params``' settings; with ``retrain`` rewind the backbone to the ``rewind_epoch``
    checkpoint and retrain with the frozen mask."""
    params = params if params is not None else OptFSSelector()
    params.check_params()
    gates = OptFSGates(data, params)
    search(data, gates, SearchBudget(params.search_epochs, params.gate_lr), seed, f"OptFS search ({params.level})")
    mask = gates.keep_mask()
    m = gates.m.detach().numpy().astype(np.float64)
    if params.level == "field":
        scores = m
        field_open = mask
    else:
        n_cat = data.train.n_categorical
        offsets = gates.offsets.numpy()
        share = [float(mask[data.train.codes[:, j] + offsets[j]].mean()) for j in range(n_cat)]
        numeric = mask[gates.n_value_gates :].astype(float)
        # Share of rows whose value keeps its gate; mean gate logit breaks ties.
        mean_m = [float(m[data.train.codes[:, j] + offsets[j]].mean()) for j in range(n_cat)] + list(m[gates.n_value_gates :])
        scores = np.asarray(share + list(numeric)) + 1e-3 * np.tanh(np.asarray(mean_m))
        field_open = np.asarray(share + list(numeric)) > 0
    kept = tuple(n for n, keep in zip(data.names, field_open) if keep)
    final = None
    if retrain:
        final = fresh_model(data.train.fields, data.spec, seed)
        if gates.rewind_state is not None:
            final.load_state_dict(gates.rewind_state)
        frozen = torch.as_tensor(mask, dtype=torch.float32)
        gate: Gate = frozen if params.level == "field" else (lambda codes: gates.expand(frozen, codes))
        train_ctr(final, data.train, data.valid, data.recipe, seed=seed, gate=gate, description="OptFS retrain")
        final.frozen_gate = gate
    return OptFSResult(scores, kept, mask, final)
