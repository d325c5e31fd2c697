"""SISA in memory: the assignment, per-slice training, the aggregated predictor and the `sisa`
method — checked for exactness against training from scratch without the deleted examples."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from erasekit.core.errors import DataError, ForgetSetError, MethodError, ModelError
from erasekit.data import ForgetSpec
from erasekit.sisa.sharding import (
    Assignment,
    ShardConfig,
    ShardJob,
    SISAEnsemble,
    load_state,
    run_shard_job,
    slice_data,
    state_of,
)
from erasekit.training import Recipe
from erasekit.unlearn import SISAParams, UnlearningTask, unlearn
from erasekit.unlearn.sisa import train_sharded_original

RECIPE = Recipe(epochs=2, batch_size=64, lr=0.05)


# -- assignment ---------------------------------------------------------------------------
def test_assignment_partitions_every_example_into_near_equal_shards_and_slices():
    ids = np.arange(100, 203)  # 103 examples with ids that are not positions
    a = Assignment.create(ids, num_shards=4, num_slices=3, seed=1)
    sizes = np.bincount(a.shard, minlength=4)
    assert sizes.sum() == 103 and sizes.max() - sizes.min() <= 1
    for s in range(4):
        per_slice = [len(a.members(s, r)) for r in range(3)]
        assert sum(per_slice) == sizes[s] and max(per_slice) - min(per_slice) <= 1
    assert np.array_equal(a.positions_of([100, 202]), [0, 102])
    assert Assignment.create(ids, 4, 3, seed=1).sha256() == a.sha256()
    assert Assignment.create(ids, 4, 3, seed=2).sha256() != a.sha256()


def test_assignment_rejects_more_shards_than_examples():
    with pytest.raises(DataError, match="larger than the 10 training examples"):
        Assignment.create(np.arange(10), num_shards=11, num_slices=1)
    with pytest.raises(DataError, match="S × R = 5 × 3"):
        Assignment.create(np.arange(10), num_shards=5, num_slices=3)


def test_assignment_names_an_unknown_id():
    a = Assignment.create(np.arange(50, 60), 2, 1)
    with pytest.raises(ForgetSetError, match="example id 7 is not in the training set"):
        a.positions_of([55, 7])


def test_stage_epochs_follow_2e_over_r_plus_1():
    config = ShardConfig(spec=None, recipe=Recipe(epochs=20))
    assert config.stage_epochs(1) == 20
    assert config.stage_epochs(5) == 7  # ⌈40 / 6⌉
    assert config.stage_epochs(100) == 1


# -- the aggregated predictor -------------------------------------------------------------
class _Fixed(nn.Module):
    def __init__(self, logits):
        super().__init__()
        self.register_buffer("logits", torch.tensor(logits, dtype=torch.float32))

    def forward(self, x):
        return self.logits.expand(len(x), -1)


def test_mean_aggregation_is_the_mean_of_probabilities_hand_computed():
    a = [np.log(0.7), np.log(0.2), np.log(0.1)]
    b = [np.log(0.1), np.log(0.6), np.log(0.3)]
    ensemble = SISAEnsemble([_Fixed(a), _Fixed(b)], "mean")
    proba = ensemble.predict_proba(torch.zeros(2, 1))
    np.testing.assert_allclose(proba[0], [0.4, 0.4, 0.2], atol=1e-6)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)


def test_vote_aggregation_follows_the_majority_not_the_mean():
    # two shards mildly prefer class 1, one shard is very sure of class 0: mean picks 0, vote picks 1
    confident = [np.log(0.98), np.log(0.01), np.log(0.01)]
    mild = [np.log(0.3), np.log(0.4), np.log(0.3)]
    members = [_Fixed(confident), _Fixed(mild), _Fixed(mild)]
    assert SISAEnsemble(members, "mean").predict(torch.zeros(1, 1))[0] == 0
    assert SISAEnsemble(members, "vote").predict(torch.zeros(1, 1))[0] == 1
    np.testing.assert_allclose(SISAEnsemble(members, "vote").predict_proba(torch.zeros(1, 1)).sum(), 1.0, atol=1e-6)


def test_vote_tie_is_broken_by_the_mean_probability():
    members = [_Fixed([np.log(0.9), np.log(0.1)]), _Fixed([np.log(0.45), np.log(0.55)])]
    assert SISAEnsemble(members, "vote").predict(torch.zeros(1, 1))[0] == 0


def test_empty_shards_do_not_vote_and_an_all_empty_model_is_an_error():
    members = [_Fixed([0.0, 5.0]), _Fixed([5.0, 0.0])]
    assert SISAEnsemble(members, "mean", active=[False, True]).predict(torch.zeros(1, 1))[0] == 0
    with pytest.raises(ModelError, match="every shard"):
        SISAEnsemble(members, "mean", active=[False, False])
    with pytest.raises(ModelError, match="aggregation"):
        SISAEnsemble(members, "median")


# -- exactness of shard retraining --------------------------------------------------------
def _config(digits_spec):
    return ShardConfig(spec=digits_spec, recipe=RECIPE, seed=3)


def test_retraining_from_the_slice_checkpoint_equals_training_without_the_examples(digits, digits_spec):
    """The SISA guarantee, bit for bit: resume at the checkpoint before the deleted example's slice."""
    config = _config(digits_spec)
    assignment = Assignment.create(digits.train_rows, 3, 3, seed=3)
    x, y = digits.train.x, digits.train.y
    shard = 1
    none = np.empty(0, dtype=np.int64)
    original = run_shard_job(ShardJob(config, shard, 3, 0, None, slice_data(x, y, assignment, shard, none)))
    victim = int(assignment.members(shard, 2)[0])  # a training position in slice 2
    assert assignment.example_ids[victim] in original[-1].trained_ids  # positive control: it was trained on
    removed = np.array([victim])
    resumed = run_shard_job(ShardJob(config, shard, 3, 2, original[1].state, slice_data(x, y, assignment, shard, removed)))
    scratch = run_shard_job(ShardJob(config, shard, 3, 0, None, slice_data(x, y, assignment, shard, removed)))
    assert assignment.example_ids[victim] not in resumed[-1].trained_ids
    for key in scratch[-1].state:
        assert np.array_equal(resumed[-1].state[key], scratch[-1].state[key]), key
    # and the deletion changed the model (otherwise the equality above proves nothing)
    assert any(not np.array_equal(resumed[-1].state[k], original[-1].state[k]) for k in original[-1].state)


def test_state_round_trip(digits_spec):
    model = digits_spec.build(seed=0)
    other = load_state(digits_spec.build(seed=1), state_of(model))
    for a, b in zip(model.state_dict().values(), other.state_dict().values()):
        assert torch.equal(a, b)


# -- the registered `sisa` method ---------------------------------------------------------
@pytest.fixture(scope="module")
def sisa_task(digits, trained_mlp):
    from tests.conftest import QUICK_RECIPE

    return UnlearningTask.create(trained_mlp, digits.train, ForgetSpec.random(0.05), recipe=QUICK_RECIPE, seed=0)


def test_sisa_method_equals_sharded_training_on_the_retain_set(sisa_task, digits):
    params = SISAParams(shards=3, slices=2)
    result = unlearn(sisa_task, "sisa", params)
    assert result.cache_hits == 1  # the sharded original came from prepare, outside the timing
    # exact reference: the same sharding trained from scratch on the retain set
    retain_task = UnlearningTask.create(
        sisa_task.model, digits.train, [int(sisa_task.forget_indices[0])], recipe=sisa_task.recipe, seed=0
    )
    original = train_sharded_original(retain_task, params)
    x, y = digits.train.x, digits.train.y
    from erasekit.sisa.sharding import train_stages
    from erasekit.unlearn.sisa import _shard_model

    for shard, member in enumerate(result.model.members):
        model = _shard_model(retain_task, original.config, shard)
        expected = train_stages(
            model, original.config, shard, 2, 0, slice_data(x, y, original.assignment, shard, sisa_task.forget_indices)
        )[-1].state
        got = state_of(member)
        assert all(np.array_equal(got[k], expected[k]) for k in expected), f"shard {shard} is not exact"


def test_sisa_method_retrains_only_affected_shards(digits, trained_mlp):
    from tests.conftest import QUICK_RECIPE

    task = UnlearningTask.create(trained_mlp, digits.train, [0], recipe=QUICK_RECIPE, seed=0)
    params = SISAParams(shards=4, slices=1)
    result = unlearn(task, "sisa", params)
    original = task.cache.get_or_compute(("sisa-original", task.data_sha256, task.recipe.sha256(), 0, 4, 1), lambda: None)
    changed = [
        s
        for s, m in enumerate(result.model.members)
        if any(not np.array_equal(state_of(m)[k], original.states[s][-1][k]) for k in original.states[s][-1])
    ]
    assert changed == [int(original.assignment.shard[0])]
    acc = (result.model.predict(digits.test.x) == digits.test.y.numpy()).mean()
    assert acc > 0.85  # 4 shard MLPs on digits still classify well


def test_sisa_params_are_validated():
    with pytest.raises(MethodError, match="shards"):
        SISAParams(shards=0)
    with pytest.raises(MethodError, match="aggregation"):
        SISAParams(aggregation="max")
