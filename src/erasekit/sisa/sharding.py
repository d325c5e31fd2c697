"""SISA in memory (Bourtoule et al., "Machine Unlearning", IEEE S&P 2021): the shard/slice
assignment, per-shard incremental training, and the aggregated predictor.

Everything here is a pure function of its inputs, so retraining a shard from the checkpoint
before slice r, without the deleted examples, gives the model that training without them would
have given — the property that makes SISA exact. Files and the ledger live in
:mod:`erasekit.ledger.store` and :mod:`erasekit.ledger.service`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import numpy as np
import torch
from torch import nn

from erasekit.core import progress
from erasekit.core.errors import DataError, ForgetSetError, ModelError
from erasekit.core.provenance import sha256_arrays
from erasekit.data.dataset import ArrayDataset
from erasekit.models.zoo import ModelSpec
from erasekit.training import Recipe, train

Aggregation = Literal["mean", "vote"]
AGGREGATIONS = ("mean", "vote")


@dataclass(frozen=True)
class Assignment:
    """Which shard and slice each training example belongs to.

    ``example_ids[p]`` is the id (source row number) of training position ``p``;
    ``shard[p]`` ∈ [0, S) and ``slice[p]`` ∈ [0, R). Shards are disjoint, near-equal random
    parts of the training set; each shard's slices are near-equal random parts of it.
    """

    example_ids: np.ndarray
    shard: np.ndarray
    slice: np.ndarray
    num_shards: int
    num_slices: int
    seed: int

    @classmethod
    def create(cls, example_ids: np.ndarray, num_shards: int, num_slices: int, seed: int = 0) -> Assignment:
        n = len(example_ids)
        if num_shards < 1 or num_slices < 1:
            raise DataError(f"shards and slices must be at least 1, got S={num_shards}, R={num_slices}")
        if num_shards * num_slices > n:
            raise DataError(
                f"S × R = {num_shards} × {num_slices} = {num_shards * num_slices} is larger than the "
                f"{n} training examples; every slice needs at least one example — use fewer shards or slices"
            )
        if len(np.unique(example_ids)) != n:
            raise DataError("example ids must be unique")
        order = np.random.default_rng(seed).permutation(n)
        shard = np.empty(n, dtype=np.int64)
        slice_ = np.empty(n, dtype=np.int64)
        for s, members in enumerate(np.array_split(order, num_shards)):
            shard[members] = s
            for r, part in enumerate(np.array_split(members, num_slices)):
                slice_[part] = r
        return cls(np.asarray(example_ids, dtype=np.int64), shard, slice_, num_shards, num_slices, seed)

    def __post_init__(self):
        n = len(self.example_ids)
        if len(self.shard) != n or len(self.slice) != n:
            raise DataError(f"assignment arrays disagree in length ({n}, {len(self.shard)}, {len(self.slice)})")
        if n and (
            self.shard.min() < 0
            or self.shard.max() >= self.num_shards
            or self.slice.min() < 0
            or self.slice.max() >= self.num_slices
        ):
            raise DataError("assignment names a shard or slice outside S × R")

    def __len__(self) -> int:
        return len(self.example_ids)

    def sha256(self) -> str:
        return sha256_arrays(
            self.example_ids, self.shard, self.slice, np.array([self.num_shards, self.num_slices, self.seed], dtype=np.int64)
        )

    @cached_property
    def _sorted_ids(self) -> tuple[np.ndarray, np.ndarray]:
        order = np.argsort(self.example_ids, kind="stable")
        return self.example_ids[order], order

    def positions_of(self, example_ids) -> np.ndarray:
        """Training positions of ``example_ids``; an id outside the training set is a ForgetSetError."""
        query = np.asarray(list(example_ids), dtype=np.int64).reshape(-1)
        sorted_ids, order = self._sorted_ids
        at = np.clip(np.searchsorted(sorted_ids, query), 0, len(sorted_ids) - 1)
        missing = sorted_ids[at] != query
        if missing.any():
            bad = int(query[np.flatnonzero(missing)[0]])
            raise ForgetSetError(
                f"example id {bad} is not in the training set of this model ({len(self)} examples, ids between "
                f"{int(sorted_ids[0])} and {int(sorted_ids[-1])}; ids are source row numbers, and rows of the "
                "held-out test split are not training examples)"
            )
        return order[at]

    def members(self, shard: int, slice_: int) -> np.ndarray:
        """Training positions in (shard, slice), ascending — the canonical order training uses."""
        return np.flatnonzero((self.shard == shard) & (self.slice == slice_))


@dataclass(frozen=True)
class ShardConfig:
    """How every shard model is built and trained.

    Each slice stage trains on the union of slices 0..r with a fresh optimiser for
    ``stage_epochs`` epochs, so a stage depends only on the previous checkpoint and the data.
    ``stage_epochs`` defaults to ⌈2E/(R+1)⌉ (Bourtoule et al.): R stages over growing unions then
    cost about as much as E epochs over the whole shard.
    """

    spec: ModelSpec | None  # None when the caller builds the shard models itself (the `sisa` method)
    recipe: Recipe
    seed: int = 0
    aggregation: Aggregation = "mean"

    def __post_init__(self):
        if self.aggregation not in AGGREGATIONS:
            raise ModelError(f"aggregation must be one of {', '.join(AGGREGATIONS)}, got '{self.aggregation}'")

    def stage_epochs(self, num_slices: int) -> int:
        return max(1, math.ceil(2 * self.recipe.epochs / (num_slices + 1)))

    def stage_seed(self, shard: int, slice_: int) -> int:
        return int(np.random.SeedSequence([self.seed, shard, slice_]).generate_state(1)[0])

    def initial_model(self, shard: int) -> nn.Module:
        if self.spec is None:
            raise ModelError("this shard configuration has no architecture; build the shard models yourself")
        return self.spec.build(seed=self.stage_seed(shard, 2**16))


# Arrays, not tensors: states then cross process boundaries by plain pickling (tensors would travel
# as shared-memory file descriptors, which can hang a process pool's result queue).
State = dict[str, np.ndarray]


def state_of(model: nn.Module) -> State:
    return {k: v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()}


def load_state(model: nn.Module, state: State) -> nn.Module:
    model.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()})
    return model


@dataclass(frozen=True)
class ShardJob:
    """Retrain one shard from ``start_slice`` on (picklable: it travels to worker processes).

    ``slices[r]`` holds the retained examples of slice r (inputs, labels, ids) for every
    r < R; stages before ``start_slice`` are not retrained but their data is part of the
    growing union. ``start_state`` is the checkpoint after slice ``start_slice - 1`` (``None``
    = the shard's deterministic initialisation).
    """

    config: ShardConfig
    shard: int
    num_slices: int
    start_slice: int
    start_state: State | None
    slices: tuple[tuple[np.ndarray, np.ndarray, np.ndarray], ...]
    in_worker: bool = False  # True in pool workers and Ray tasks: no progress bars there


@dataclass(frozen=True)
class StageResult:
    """The state after one slice stage and exactly which examples it was trained on."""

    slice: int
    state: State
    trained_ids: np.ndarray  # every example id seen up to and including this stage


def run_shard_job(job: ShardJob) -> list[StageResult]:
    """Train stages ``start_slice..R-1`` of one shard; returns one result per stage.

    Always with one torch thread: the float summation order then does not depend on where the
    job runs (this process, a pool worker, a Ray task), so a retrained shard is bit-identical to
    training it from scratch without the deleted examples — and its checkpoint hash is too.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    if job.in_worker:
        progress.set_enabled(False)
    try:
        model = job.config.initial_model(job.shard)
        if job.start_state is not None:
            load_state(model, job.start_state)
        return train_stages(model, job.config, job.shard, job.num_slices, job.start_slice, job.slices)
    finally:
        torch.set_num_threads(threads)


def train_stages(
    model: nn.Module, config: ShardConfig, shard: int, num_slices: int, start_slice: int, slices
) -> list[StageResult]:
    """Train ``model`` (in place) through stages ``start_slice..R-1`` over the growing union of slices."""
    recipe = dataclasses.replace(config.recipe, epochs=config.stage_epochs(num_slices))
    results = []
    for r in range(start_slice, num_slices):
        xs, ys, ids = (np.concatenate(parts) for parts in zip(*slices[: r + 1]))
        if len(ys):
            train(model, ArrayDataset(xs, ys), recipe, seed=config.stage_seed(shard, r), description=f"shard {shard} slice {r}")
        results.append(StageResult(slice=r, state=state_of(model), trained_ids=np.sort(ids)))
    model.eval()
    return results


def slice_data(x: torch.Tensor, y: torch.Tensor, assignment: Assignment, shard: int, removed: np.ndarray):
    """Per-slice retained (inputs, labels, ids) of one shard; ``removed`` are training positions."""
    keep = np.ones(len(assignment), dtype=bool)
    keep[np.asarray(removed, dtype=np.int64)] = False
    parts = []
    for r in range(assignment.num_slices):
        rows = assignment.members(shard, r)
        rows = rows[keep[rows]]
        index = torch.as_tensor(rows)
        parts.append((x[index].numpy(), y[index].numpy(), assignment.example_ids[rows]))
    return tuple(parts)


class SISAEnsemble(nn.Module):
    """The aggregated SISA predictor: behaves like one classifier.

    ``forward`` returns log-probabilities, so ``argmax``, ``softmax`` and cross-entropy work as
    for any classifier. ``mean``: log of the mean of the shard models' softmax probabilities.
    ``vote``: the majority vote, ties broken by the mean probability (log of
    (1 − ε)·vote share + ε·mean probability, ε = 1e-3, whose argmax is the vote winner).
    Shards left with no training examples (everything deleted) do not vote.
    """

    VOTE_EPSILON = 1e-3

    def __init__(self, members: list[nn.Module], aggregation: Aggregation = "mean", active: list[bool] | None = None):
        super().__init__()
        if aggregation not in AGGREGATIONS:
            raise ModelError(f"aggregation must be one of {', '.join(AGGREGATIONS)}, got '{aggregation}'")
        if not members:
            raise ModelError("a SISA ensemble needs at least one shard model")
        active = [True] * len(members) if active is None else list(active)
        if not any(active):
            raise ModelError("every shard of this SISA model is empty (all examples deleted); there is nothing to predict with")
        self.members = nn.ModuleList(members)
        self.aggregation = aggregation
        self.register_buffer("active", torch.tensor(active, dtype=torch.bool), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        active: torch.Tensor = self.active  # type: ignore[assignment]  # a registered buffer
        probs = torch.stack([torch.softmax(m(x), dim=1) for m, on in zip(self.members, active) if on])
        mean = probs.mean(dim=0)
        if self.aggregation == "mean":
            return torch.log(mean.clamp_min(1e-12))
        votes = nn.functional.one_hot(probs.argmax(dim=2), probs.shape[2]).float().mean(dim=0)
        eps = self.VOTE_EPSILON
        return torch.log((1 - eps) * votes + eps * mean)

    @torch.no_grad()
    def predict_proba(self, x) -> np.ndarray:
        """Aggregated class probabilities, shape [n, classes] (rows sum to 1)."""
        self.eval()
        return torch.exp(self(torch.as_tensor(x, dtype=torch.float32))).cpu().numpy()

    def predict(self, x) -> np.ndarray:
        """Predicted class per example (argmax of the aggregate)."""
        return self.predict_proba(x).argmax(axis=1)
