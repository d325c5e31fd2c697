"""SISA — exact unlearning by sharding (Bourtoule et al., "Machine Unlearning", IEEE S&P 2021), in memory.

The sharded original (S shard models, each trained over R slices with a checkpoint after every
slice) is built by ``prepare`` — once per task data, recipe, seed and (S, R), outside the timed
deletion, because a SISA deployment trains it in place of the monolithic model. The deletion
retrains only the shards holding forgotten examples, from the checkpoint before the earliest
affected slice. The sharding engine is :mod:`erasekit.sisa`; for files, requests and a ledger use
:mod:`erasekit.ledger`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

import numpy as np
import torch
from torch import nn

from erasekit.core.errors import MethodError
from erasekit.core.params import AT_LEAST_ONE, Params
from erasekit.data.dataset import ArrayDataset, batches
from erasekit.sisa.sharding import (
    AGGREGATIONS,
    Assignment,
    ShardConfig,
    SISAEnsemble,
    State,
    load_state,
    slice_data,
    train_stages,
)
from erasekit.unlearn.base import UnlearningTask, register


@dataclass(frozen=True)
class SISAParams(Params):
    """S shards × R slices. On MNIST, S = 5 costs the CNN 0.40 points of test accuracy and the
    MLP 2.0 points against one model (benchmarks/results/sisa_mnist*.md); R = 1 trains each shard
    once (slices shorten a deletion's retraining at some extra training cost).
    ``aggregation``: mean of probabilities (default) or majority vote."""

    shards: Annotated[int, AT_LEAST_ONE] = 5
    slices: Annotated[int, AT_LEAST_ONE] = 1
    aggregation: Literal["mean", "vote"] = "mean"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.aggregation not in AGGREGATIONS:
            raise MethodError(f"sisa.aggregation must be one of {', '.join(AGGREGATIONS)}, got '{self.aggregation}'")


@dataclass(frozen=True)
class ShardedOriginal:
    """The sharded model before any deletion: its assignment and every slice checkpoint."""

    assignment: Assignment
    config: ShardConfig
    states: tuple[tuple[State, ...], ...]  # [shard][slice]


def _tensors(task: UnlearningTask) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(task.train, ArrayDataset):
        return task.train.x, task.train.y
    xs, ys = zip(*batches(task.train, 1024))
    if not all(torch.is_tensor(x) for x in xs):
        raise MethodError(
            "sisa slices the inputs as one tensor per example; dict inputs (e.g. tokenizer output) are not supported"
        )
    return torch.cat(xs), torch.cat(ys)


def _shard_model(task: UnlearningTask, config: ShardConfig, shard: int) -> nn.Module:
    """A fresh shard model on the task's device (checkpoints are kept on the CPU)."""
    return task.fresh_model(seed=config.stage_seed(shard, 2**16))


def _key(task: UnlearningTask, params: SISAParams) -> tuple:
    return ("sisa-original", task.data_sha256, task.recipe.sha256(), task.seed, params.shards, params.slices)


def train_sharded_original(task: UnlearningTask, params: SISAParams) -> ShardedOriginal:
    """Train S shard models over R slices on the whole training set of ``task``."""
    x, y = _tensors(task)
    assignment = Assignment.create(np.arange(len(y)), params.shards, params.slices, task.seed)
    config = ShardConfig(spec=None, recipe=task.recipe, seed=task.seed, aggregation=params.aggregation)
    no_removal = np.empty(0, dtype=np.int64)
    states = []
    for shard in range(params.shards):
        model = _shard_model(task, config, shard)
        results = train_stages(model, config, shard, params.slices, 0, slice_data(x, y, assignment, shard, no_removal))
        states.append(tuple(r.state for r in results))
    return ShardedOriginal(assignment, config, tuple(states))


def _prepare(task: UnlearningTask, params: SISAParams) -> None:
    task.cache.get_or_compute(_key(task, params), lambda: train_sharded_original(task, params))


@register("sisa", SISAParams, exact=True, prepare=_prepare)
def sisa(task: UnlearningTask, params: SISAParams) -> nn.Module:
    """SISA: retrain only the shards holding forgotten examples, from the checkpoint before their slice."""
    original: ShardedOriginal = task.cache.get_or_compute(_key(task, params), lambda: train_sharded_original(task, params))
    assignment, config = original.assignment, original.config
    forget = task.forget_indices
    earliest: dict[int, int] = {}
    for p in forget:
        shard, slice_ = int(assignment.shard[p]), int(assignment.slice[p])
        earliest[shard] = min(earliest.get(shard, slice_), slice_)
    x, y = _tensors(task)
    members, active = [], []
    for shard in range(params.shards):
        model = _shard_model(task, config, shard)
        if shard in earliest:
            start = earliest[shard]
            if start > 0:
                load_state(model, original.states[shard][start - 1])
            results = train_stages(model, config, shard, params.slices, start, slice_data(x, y, assignment, shard, forget))
            trained = len(results[-1].trained_ids)
        else:
            load_state(model, original.states[shard][-1])
            trained = 1
        model.eval()
        members.append(model)
        active.append(trained > 0)
    return SISAEnsemble(members, params.aggregation, active)
