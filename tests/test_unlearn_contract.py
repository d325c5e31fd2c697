"""One contract for every registered method: shape, determinism, caller's model untouched,
any Dataset works, bad input rejected. A new method is covered by registering it."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

from conftest import ALL_METHODS, QUICK_RECIPE, fast_params
from erasekit.core.errors import ForgetSetError, MethodError, ModelError
from erasekit.core.provenance import sha256_state
from erasekit.data import ForgetSpec
from erasekit.unlearn import (
    SalUnParams,
    SSDParams,
    UnlearningTask,
    available_methods,
    method_info,
    parse_method_list,
    parse_param_overrides,
    unlearn,
)


@pytest.fixture(scope="module")
def small_task(trained_mlp, digits):
    return UnlearningTask.create(trained_mlp, digits.train, ForgetSpec.random(0.05), recipe=QUICK_RECIPE, seed=0)


@pytest.mark.parametrize("name", ALL_METHODS)
def test_method_contract(name, small_task, digits):
    before = sha256_state(small_task.model)
    first = unlearn(small_task, name, fast_params(name))
    second = unlearn(small_task, name, fast_params(name))
    assert sha256_state(small_task.model) == before, "the caller's model must not change"
    assert first.model is not small_task.model
    assert first.model(digits.test.x[:4]).shape == (4, digits.num_classes)
    assert first.weights_sha256 == second.weights_sha256, "same seed must give the same model"
    assert first.original_weights_sha256 == before
    assert first.seconds > 0 and first.method == name
    assert dataclasses.is_dataclass(first.params)


@pytest.mark.parametrize("name", ["finetune", "salun", "ssd", "scrub"])
def test_methods_accept_any_torch_dataset(name, trained_mlp, digits):
    plain = TensorDataset(digits.train.x[:300], digits.train.y[:300])
    task = UnlearningTask.create(trained_mlp, plain, [0, 5, 9], recipe=QUICK_RECIPE)
    result = unlearn(task, name, fast_params(name))
    assert result.model(digits.test.x[:2]).shape == (2, 10)


def test_registry_lists_every_method_once_with_typed_params():
    names = available_methods()
    assert names[0] == "retrain"
    assert {
        "retrain",
        "finetune",
        "gradient_ascent",
        "neggrad_plus",
        "random_label",
        "l1_sparse",
        "salun",
        "ssd",
        "lfssd",
        "scrub",
        "boundary_shrink",
    } <= set(names)
    for name in names:
        info = method_info(name)
        assert dataclasses.is_dataclass(info.params_type) and info.summary
    assert "retrain" not in parse_method_list("all")


def test_unknown_method_suggests_close_names(small_task):
    with pytest.raises(MethodError, match="did you mean 'salun'"):
        unlearn(small_task, "saluun")
    with pytest.raises(MethodError, match="did you mean"):
        parse_method_list("ssd,finetun")


def test_wrong_params_type_is_rejected(small_task):
    with pytest.raises(MethodError, match="takes SalUnParams"):
        unlearn(small_task, "salun", SSDParams())


def test_param_overrides_are_typed():
    params = parse_param_overrides(["salun.mask_ratio=0.3", "salun.epochs=2", "ssd.alpha=5"])
    assert params["salun"] == SalUnParams(mask_ratio=0.3, epochs=2)
    assert params["ssd"] == SSDParams(alpha=5.0)
    for bad, message in [
        ("salun.mask_rate=0.3", "did you mean 'mask_ratio'"),
        ("salun.epochs=two", "must be int"),
        ("salun.mask_ratio=1.5", r"mask_ratio must be in \(0, 1\]"),
        ("salun=0.3", "METHOD.NAME=VALUE"),
        ("nosuch.x=1", "unknown unlearning method"),
        ("salun.lr=inf", "salun.lr must be a finite number"),
        ("salun.lr=nan", "salun.lr must be a finite number"),
        ("salun.lr=0", r"SalUnParams.lr must be > 0"),
    ]:
        with pytest.raises(MethodError, match=message):
            parse_param_overrides([bad])
    with pytest.raises(MethodError, match="not among the methods"):
        parse_param_overrides(["ssd.alpha=5"], methods=("salun",))


def test_model_output_size_must_match_classes(digits):
    wrong = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 7))
    with pytest.raises(ModelError, match="7.*10 classes"):
        UnlearningTask.create(wrong, digits.train, ForgetSpec.classes(3))


def test_model_that_cannot_run_on_the_data(digits):
    wrong = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(50, 10))
    with pytest.raises(ModelError, match="cannot run on the data"):
        UnlearningTask.create(wrong, digits.train, ForgetSpec.classes(3))


def test_task_rejects_bad_forget_sets(trained_mlp, digits):
    with pytest.raises(ForgetSetError, match="empty"):
        UnlearningTask.create(trained_mlp, digits.train, [])
    with pytest.raises(ForgetSetError, match="more than once"):
        UnlearningTask.create(trained_mlp, digits.train, [1, 1])
    with pytest.raises(ForgetSetError, match="whole training set"):
        UnlearningTask.create(trained_mlp, digits.train, np.arange(len(digits.train)))
