"""Method-specific guarantees, and proof of removal with positive controls."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import QUICK_RECIPE
from erasekit.audit import accuracy, predict_logits
from erasekit.core.provenance import sha256_state
from erasekit.data import ForgetSpec
from erasekit.data.dataset import subset
from erasekit.training import fresh_init, train
from erasekit.unlearn import (
    BoundaryShrinkParams,
    L1SparseParams,
    NegGradPlusParams,
    RandomLabelParams,
    SalUnParams,
    SSDParams,
    UnlearningTask,
    unlearn,
)
from erasekit.unlearn import ssd as ssd_module
from erasekit.unlearn.boundary_shrink import nearest_wrong_labels
from erasekit.unlearn.salun import saliency_mask

FORGET_CLASS = 3


@pytest.fixture(scope="module")
def class_task(trained_mlp, digits):
    return UnlearningTask.create(trained_mlp, digits.train, ForgetSpec.classes(FORGET_CLASS), recipe=QUICK_RECIPE)


def forget_and_retain_acc(model, task):
    return accuracy(*predict_logits(model, task.forget_set)), accuracy(*predict_logits(model, task.retain_set))


def test_positive_control_original_knows_the_class(class_task):
    forget_acc, retain_acc = forget_and_retain_acc(class_task.model, class_task)
    assert forget_acc > 0.95 and retain_acc > 0.95


@pytest.mark.parametrize(
    "name, params",
    [
        ("retrain", None),
        ("salun", SalUnParams(epochs=3)),
        ("random_label", RandomLabelParams(epochs=3)),
        ("neggrad_plus", NegGradPlusParams()),
        ("boundary_shrink", BoundaryShrinkParams(epochs=3)),
    ],
)
def test_class_is_forgotten_and_the_rest_kept(name, params, class_task):
    """Same check as the positive control above: the class is gone, the other classes are not."""
    result = unlearn(class_task, name, params)
    forget_acc, retain_acc = forget_and_retain_acc(result.model, class_task)
    assert forget_acc <= 0.05, f"{name} still classifies {forget_acc:.0%} of class {FORGET_CLASS}"
    assert retain_acc >= 0.85


def test_retrain_is_exactly_a_fresh_run_on_the_retain_set(class_task):
    result = unlearn(class_task, "retrain")
    by_hand = train(fresh_init(class_task.model, class_task.seed), class_task.retain_set, class_task.recipe, seed=class_task.seed)
    assert result.weights_sha256 == sha256_state(by_hand)
    assert not np.any(np.isin(class_task.retain_set.y.numpy(), [FORGET_CLASS]))


def test_salun_masked_out_weights_stay_bit_identical(class_task):
    params = SalUnParams(mask_ratio=0.3, epochs=2, weight_decay=5e-3, momentum=0.9)
    masks = saliency_mask(class_task.copy_model().model, class_task.forget_set, params.mask_ratio, params.batch_size)
    result = unlearn(class_task, "salun", params)
    original = dict(class_task.model.model.named_parameters())
    moved = 0
    for name, p in result.model.named_parameters():
        frozen = ~masks[name]
        assert torch.equal(p[frozen], original[name][frozen]), f"{name}: masked-out weights moved"
        moved += int((p[masks[name]] != original[name][masks[name]]).sum())
    assert moved > 0, "positive control: the salient weights must have been updated"


def test_salun_mask_keeps_the_requested_fraction(class_task):
    masks = saliency_mask(class_task.copy_model(), class_task.forget_set, 0.25, 64)
    kept = sum(int(m.sum()) for m in masks.values())
    total = sum(m.numel() for m in masks.values())
    assert kept == round(0.25 * total)


def test_ssd_dampening_hand_computed(monkeypatch, trained_mlp, digits):
    task = UnlearningTask.create(trained_mlp, digits.train, [0, 1, 2], recipe=QUICK_RECIPE)

    def fake_importances(model, dataset, batch_size, label_free, description, loss_fn=None):
        full = "full" in description
        out = {}
        for name, p in model.named_parameters():
            value = torch.ones_like(p)
            if not full:  # I_F: 5 (not selected, 5 < 10), 20 (β = 1/20), 100 (β = 1/100)
                flat = value.view(-1)
                flat[0], flat[1], flat[2] = 5.0, 20.0, 100.0
            out[name] = value
        return out

    monkeypatch.setattr(ssd_module, "importances", fake_importances)
    result = unlearn(task, "ssd", SSDParams(alpha=10.0, lam=1.0))
    for (name, old), new in zip(trained_mlp.named_parameters(), result.model.parameters()):
        old, new = old.detach().view(-1), new.detach().view(-1)
        assert torch.allclose(new[:3], old[:3] * torch.tensor([1.0, 1 / 20, 1 / 100])), name
        assert torch.equal(new[3:], old[3:]), name


def test_ssd_full_data_importances_are_computed_once(trained_mlp, digits):
    first = UnlearningTask.create(trained_mlp, digits.train, ForgetSpec.classes(3), recipe=QUICK_RECIPE)
    second = UnlearningTask.create(trained_mlp, digits.train, ForgetSpec.classes(5), recipe=QUICK_RECIPE, cache=first.cache)
    cold = unlearn(first, "ssd")
    warm = unlearn(second, "ssd")
    assert (cold.cache_hits, warm.cache_hits) == (0, 1)
    fresh = UnlearningTask.create(trained_mlp, digits.train, ForgetSpec.classes(5), recipe=QUICK_RECIPE)
    assert unlearn(fresh, "ssd").weights_sha256 == warm.weights_sha256, "cached statistics must give the same result"


def test_ssd_forgets_a_class(class_task):
    result = unlearn(class_task, "ssd", SSDParams(alpha=10.0, lam=1.0))
    forget_acc, _ = forget_and_retain_acc(result.model, class_task)
    assert forget_acc < 0.5  # positive control above: > 0.95 before


def test_l1_sparse_prune_first_keeps_pruned_weights_at_zero(class_task):
    result = unlearn(class_task, "l1_sparse", L1SparseParams(epochs=1, prune_ratio=0.9))
    weights = [p for p in result.model.parameters() if p.ndim >= 2]
    zeros = sum(int((p == 0).sum()) for p in weights)
    total = sum(p.numel() for p in weights)
    assert zeros >= int(0.9 * total)
    baseline = unlearn(class_task, "l1_sparse", L1SparseParams(epochs=1))  # control: no pruning, no zeros
    assert sum(int((p == 0).sum()) for p in baseline.model.parameters() if p.ndim >= 2) < 0.01 * total


def test_boundary_shrink_never_keeps_the_true_label(class_task):
    labels = nearest_wrong_labels(class_task.copy_model(), class_task.forget_set, 0.1, 64)
    assert not torch.any(labels == class_task.forget_set.y)


def test_random_forgetting_moves_forget_accuracy_toward_retrain(trained_mlp, digits):
    task = UnlearningTask.create(trained_mlp, digits.train, ForgetSpec.random(0.1), recipe=QUICK_RECIPE, seed=1)
    forget = subset(digits.train, task.forget_indices)
    original = accuracy(*predict_logits(trained_mlp, forget))
    reference = accuracy(*predict_logits(unlearn(task, "retrain").model, forget))
    # the original trained on them; retrain never saw them, so it treats them like test data
    assert reference < original
