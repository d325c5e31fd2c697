"""Click-through-rate models over fields: logistic regression, FM, DeepFM and DCN.

Every field has its own embedding: a table per categorical field (row 0 is the reserved
index for missing/unseen values) and one vector per numeric field scaled by the value.
The forward pass is split into :meth:`CTRModel.embed` (field embeddings ``E`` [n, F, d]
and first-order terms [n, F]) and :meth:`CTRModel.head`, and takes an optional field
``gate`` ([F] or [n, F]) that multiplies both — which is how the gate-based selectors
(OptFS, AutoField, AdaFS, LPFS, SFS) and the masking strategies act on fields.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Literal, cast

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.metrics import log_loss, roc_auc_score
from sklearn.utils.validation import check_is_fitted, validate_data
from torch import nn

from erasekit.core import progress
from erasekit.core.device import model_device
from erasekit.core.errors import FieldError, suggest
from erasekit.core.rng import generator as seeded_generator
from erasekit.core.rng import seeded
from erasekit.data.ctr import Field, FieldTable, table_from_matrix

CTR_KINDS = ("lr", "fm", "deepfm", "dcn")
# a field gate: a tensor [F] or [n, F], or a function of a minibatch's codes returning one (value-level gates)
Gate = torch.Tensor | Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class CTRSpec:
    """Architecture. Defaults follow the ERASE benchmark protocol (embedding dim 8)."""

    kind: Literal["lr", "fm", "deepfm", "dcn"] = "deepfm"
    embed_dim: int = 8
    hidden: tuple[int, ...] = (64, 32)
    cross_layers: int = 2
    device: str = "cpu"  # where fresh_model puts the model; training and prediction follow the model

    def __post_init__(self):
        if self.kind not in CTR_KINDS:
            raise FieldError(
                f"unknown CTR model '{self.kind}'{suggest(self.kind, CTR_KINDS)}; choose one of {', '.join(CTR_KINDS)}"
            )
        if self.embed_dim < 1 or any(h < 1 for h in self.hidden) or self.cross_layers < 0:
            raise FieldError(f"CTR model sizes must be positive, got {self}")


class CTRModel(nn.Module):
    """A CTR model for a fixed list of fields; returns click logits [n].

    ``frozen_gate``: the gate a selector trained this model with (OptFS's frozen mask), to
    evaluate it as trained: ``evaluate(model, table, gate=model.frozen_gate)``.
    """

    numeric_vectors: nn.Parameter
    numeric_weights: nn.Parameter
    frozen_gate: Gate | None = None

    def __init__(self, fields: tuple[Field, ...], spec: CTRSpec = CTRSpec()):
        super().__init__()
        if not fields:
            raise FieldError("a CTR model needs at least one field")
        self.spec = spec
        self.fields = tuple(fields)
        categorical = [f for f in fields if f.kind == "categorical"]
        self.n_categorical = len(categorical)
        self.n_numeric = len(fields) - self.n_categorical
        d = spec.embed_dim
        self.tables = nn.ModuleList(nn.Embedding(f.vocab_size, d) for f in categorical)
        self.first_tables = nn.ModuleList(nn.Embedding(f.vocab_size, 1) for f in categorical)
        self.numeric_vectors = nn.Parameter(torch.empty(self.n_numeric, d))
        self.numeric_weights = nn.Parameter(torch.zeros(self.n_numeric))
        self.bias = nn.Parameter(torch.zeros(1))
        width = len(fields) * d
        if spec.kind in ("deepfm", "dcn"):
            layers: list[nn.Module] = []
            size = width
            for h in spec.hidden:
                layers += [nn.Linear(size, h), nn.ReLU()]
                size = h
            self.deep = nn.Sequential(*layers)
            self.deep_out = nn.Linear(size + (width if spec.kind == "dcn" else 0), 1)
        if spec.kind == "dcn":
            self.cross_w = nn.Parameter(torch.empty(spec.cross_layers, width))
            self.cross_b = nn.Parameter(torch.zeros(spec.cross_layers, width))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for table in self.tables:
            nn.init.normal_(cast(nn.Embedding, table).weight, std=0.01)
        for table in self.first_tables:
            nn.init.zeros_(cast(nn.Embedding, table).weight)
        nn.init.normal_(self.numeric_vectors, std=0.01)
        nn.init.zeros_(self.numeric_weights)
        nn.init.zeros_(self.bias)
        if hasattr(self, "cross_w"):
            nn.init.normal_(self.cross_w, std=0.01)
            nn.init.zeros_(self.cross_b)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                module.reset_parameters()

    def embed(self, codes: torch.Tensor, numeric: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Field embeddings E [n, F, d] and first-order terms [n, F] (categorical fields first)."""
        parts = [table(codes[:, j]) for j, table in enumerate(self.tables)]
        firsts = [table(codes[:, j]).squeeze(1) for j, table in enumerate(self.first_tables)]
        if self.n_numeric:
            parts += list((numeric.unsqueeze(2) * self.numeric_vectors.unsqueeze(0)).unbind(1))
            firsts += list((numeric * self.numeric_weights).unbind(1))
        return torch.stack(parts, dim=1), torch.stack(firsts, dim=1)

    def head(self, embeddings: torch.Tensor, first: torch.Tensor) -> torch.Tensor:
        logit = self.bias + first.sum(1)
        if self.spec.kind in ("fm", "deepfm"):
            summed = embeddings.sum(1)
            logit = logit + 0.5 * (summed.pow(2) - embeddings.pow(2).sum(1)).sum(1)
        if self.spec.kind in ("deepfm", "dcn"):
            flat = embeddings.flatten(1)
            deep = self.deep(flat)
            if self.spec.kind == "dcn":
                x = flat
                for w, b in zip(self.cross_w, self.cross_b):
                    x = flat * (x @ w).unsqueeze(1) + b + x
                deep = torch.cat([deep, x], dim=1)
            logit = logit + self.deep_out(deep).squeeze(1)
        return logit

    def forward(self, codes: torch.Tensor, numeric: torch.Tensor, gate: Gate | None = None) -> torch.Tensor:
        """Logits [n]. ``gate``: None, a tensor [F] / [n, F], or a function of ``codes`` returning one."""
        embeddings, first = self.embed(codes, numeric)
        if callable(gate):
            gate = gate(codes)
        return self.gated_head(embeddings, first, gate)

    def gated_head(self, embeddings: torch.Tensor, first: torch.Tensor, gate: torch.Tensor | None) -> torch.Tensor:
        """:meth:`head` after multiplying each field's embedding and first-order term by ``gate`` ([F] or [n, F])."""
        if gate is not None:
            if gate.dim() == 1:
                gate = gate.unsqueeze(0)
            embeddings = embeddings * gate.unsqueeze(2)
            first = first * gate
        return self.head(embeddings, first)


def fresh_model(fields: tuple[Field, ...], spec: CTRSpec, seed: int) -> CTRModel:
    """A newly initialised model whose initial weights depend only on ``seed``."""
    with seeded(seed):
        model = CTRModel(fields, spec)  # initialised on the CPU: the same weights on every device
    return model.to(spec.device)


@dataclass(frozen=True)
class CTRRecipe:
    """Training of a CTR backbone: Adam, early stopping on validation logloss.

    ERASE uses Adam lr 1e-3, batch 4096 and early stopping; on tables of tens of thousands
    of rows batch 4096 leaves too few steps per epoch, so the default batch is 512.
    """

    max_epochs: int = 10
    batch_size: int = 512
    lr: float = 1e-3
    weight_decay: float = 0.0
    patience: int = 1

    def __post_init__(self):
        if self.max_epochs < 1 or self.batch_size < 1 or not self.lr > 0 or self.patience < 0:
            raise FieldError(f"CTR recipe needs max_epochs ≥ 1, batch_size ≥ 1, lr > 0, patience ≥ 0; got {self}")

    def to_dict(self) -> dict:
        return asdict(self)


def tensors(table: FieldTable, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Codes, numeric values and labels of ``table`` as tensors on ``device`` (the model's)."""
    return (
        torch.as_tensor(table.codes, dtype=torch.long, device=device),
        torch.as_tensor(table.numeric, dtype=torch.float32, device=device),
        torch.as_tensor(table.labels, dtype=torch.float32, device=device),
    )


def minibatches(n: int, batch_size: int, generator: torch.Generator | None):
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    for start in range(0, n, batch_size):
        yield order[start : start + batch_size]


@torch.no_grad()
def predict_logits(model: CTRModel, table: FieldTable, gate: Gate | None = None, batch_size: int = 8192) -> np.ndarray:
    model.eval()
    codes, numeric, _ = tensors(table, model_device(model))
    out = [model(codes[i : i + batch_size], numeric[i : i + batch_size], gate) for i in range(0, len(table), batch_size)]
    return torch.cat(out).cpu().numpy() if out else np.zeros(0, dtype=np.float32)


@dataclass(frozen=True)
class CTRScore:
    """Test AUC (higher is better, 0.5 = chance) and logloss (lower is better) of click predictions."""

    auc: float
    logloss: float


def score_logits(logits: np.ndarray, labels: np.ndarray) -> CTRScore:
    if len(np.unique(labels)) < 2:
        raise FieldError("AUC needs both classes in the evaluation labels")
    probabilities = np.clip(1 / (1 + np.exp(-logits.astype(np.float64))), 1e-7, 1 - 1e-7)
    return CTRScore(float(roc_auc_score(labels, logits)), float(log_loss(labels, probabilities, labels=[0, 1])))


def evaluate(model: CTRModel, table: FieldTable, gate: Gate | None = None) -> CTRScore:
    return score_logits(predict_logits(model, table, gate), table.labels)


def check_binary(table: FieldTable, what: str = "training labels") -> None:
    values = np.unique(table.labels)
    if not np.isin(values, (0.0, 1.0)).all():
        raise FieldError(f"{what} must be 0/1 clicks for CTR models, found values {values[:5].tolist()}")
    if len(values) < 2:
        raise FieldError(f"{what} contain a single class; a CTR model needs clicks and non-clicks")


def train_ctr(
    model: CTRModel,
    train: FieldTable,
    valid: FieldTable | None,
    recipe: CTRRecipe = CTRRecipe(),
    seed: int = 0,
    gate: Gate | None = None,
    description: str = "train CTR",
) -> CTRModel:
    """Train ``model`` in place; with ``valid`` keep the epoch with the lowest validation logloss."""
    check_binary(train)
    generator = seeded_generator(seed)
    codes, numeric, labels = tensors(train, model_device(model))  # the table is copied to the model's device once
    optimizer = torch.optim.Adam(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    loss_fn = nn.BCEWithLogitsLoss()
    best = (np.inf, copy.deepcopy(model.state_dict()))
    stale = 0
    steps_per_epoch = -(-len(train) // recipe.batch_size)
    with progress.step(description, recipe.max_epochs * steps_per_epoch) as advance:
        for _ in range(recipe.max_epochs):
            model.train()
            for index in minibatches(len(train), recipe.batch_size, generator):
                optimizer.zero_grad(set_to_none=True)
                loss_fn(model(codes[index], numeric[index], gate), labels[index]).backward()
                optimizer.step()
                advance(1)
            if valid is None:
                continue
            loss = evaluate(model, valid, gate).logloss
            if loss < best[0] - 1e-5:
                best, stale = (loss, copy.deepcopy(model.state_dict())), 0
            else:
                stale += 1
                if stale > recipe.patience:
                    break
    if valid is not None:
        model.load_state_dict(best[1])
    model.eval()
    return model


class CTRClassifier(ClassifierMixin, BaseEstimator):
    """A CTR backbone as a scikit-learn classifier, e.g. the estimator of :class:`~erasekit.features.RemovalSelector`.

    ``X`` holds one column per field: integer codes for the columns listed in ``categorical``
    (0 = missing/unseen; codes above those seen in fit also map to 0), numbers otherwise.
    ``FieldTable.matrix()`` produces this layout. ``validation_fraction`` of the rows is held
    out for early stopping.
    """

    def __init__(
        self,
        kind: str = "deepfm",
        categorical: tuple[int, ...] = (),
        embed_dim: int = 8,
        max_epochs: int = 10,
        batch_size: int = 512,
        lr: float = 1e-3,
        validation_fraction: float = 0.1,
        random_state: int = 0,
        device: str = "cpu",
    ):
        self.kind = kind
        self.categorical = categorical
        self.embed_dim = embed_dim
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.device = device

    def _table(self, X: np.ndarray, y: np.ndarray | None) -> FieldTable:
        return table_from_matrix(X, y, self.categorical_, self.vocab_sizes_)

    def fit(self, X, y):
        X, y = validate_data(self, X, y, dtype=np.float64)
        self.classes_, encoded = np.unique(y, return_inverse=True)
        if len(self.classes_) != 2:
            raise FieldError(f"CTRClassifier needs a binary target, found {len(self.classes_)} classes")
        self.categorical_ = tuple(int(j) for j in self.categorical if j < X.shape[1])
        cat = list(self.categorical_)
        self.vocab_sizes_ = (X[:, cat].max(axis=0).astype(np.int64) + 1) if cat else np.zeros(0, dtype=np.int64)
        self.vocab_sizes_ = np.maximum(self.vocab_sizes_, 1)
        table = self._table(X, encoded)
        self.fields_ = table.fields
        rng = np.random.default_rng(self.random_state)
        order = rng.permutation(len(X))
        n_valid = int(round(self.validation_fraction * len(X)))
        valid_rows = order[:n_valid]
        valid = table.rows(valid_rows) if n_valid and len(np.unique(encoded[valid_rows])) == 2 else None
        self.model_ = fresh_model(self.fields_, CTRSpec(self.kind, self.embed_dim, device=self.device), self.random_state)
        train_ctr(
            self.model_,
            table.rows(order[n_valid:]) if valid is not None else table,
            valid,
            CTRRecipe(self.max_epochs, self.batch_size, self.lr),
            seed=self.random_state,
        )
        return self

    def decision_function(self, X) -> np.ndarray:
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return predict_logits(self.model_, self._table(X, None)).astype(np.float64)

    def predict_proba(self, X) -> np.ndarray:
        p = 1 / (1 + np.exp(-self.decision_function(X)))
        return np.column_stack([1 - p, p])

    def predict(self, X) -> np.ndarray:
        return self.classes_[(self.decision_function(X) > 0).astype(int)]
