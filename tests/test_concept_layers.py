"""Erasing a concept at named layers of a model, with hooks that never outlive their block."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from torch import nn

from erasekit.concepts import collect_activations, erased_layers, fit_eraser, fit_layer_erasers
from erasekit.core.errors import ConceptError


def model_and_data(seed=0):
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    z = rng.integers(0, 2, 3000)
    x = rng.normal(size=(3000, 10)).astype(np.float32)
    x[:, 0] += 2 * z
    model = nn.Sequential(nn.Linear(10, 16), nn.ReLU(), nn.Linear(16, 12), nn.ReLU(), nn.Linear(12, 2))
    batches = [torch.as_tensor(x[i : i + 500]) for i in range(0, 3000, 500)]
    return model, batches, z


def probe(features, z):
    f = features.numpy()
    return LogisticRegression(C=1e4, max_iter=3000).fit(f[:1500], z[:1500]).score(f[1500:], z[1500:])


def test_layer_erasure_removes_the_concept_and_hooks_are_removed():
    model, batches, z = model_and_data()
    assert probe(collect_activations(model, "2", batches), z) > 0.7  # positive control (majority ≈ 0.5)
    erasers = fit_layer_erasers(model, ["2"], batches, z)
    with erased_layers(model, erasers):
        assert len(model[2]._forward_hooks) == 1
        erased = collect_activations(model, "2", batches)
    assert probe(erased, z) < 0.56
    assert all(len(m._forward_hooks) == 0 for m in model.modules()), "hooks must be removed after the block"


def test_hooks_are_removed_when_the_block_raises():
    model, batches, z = model_and_data()
    erasers = fit_layer_erasers(model, ["0"], batches, z)
    with pytest.raises(RuntimeError):
        with erased_layers(model, erasers):
            raise RuntimeError("boom")
    assert all(len(m._forward_hooks) == 0 for m in model.modules())


def test_sequential_layers_are_fitted_on_erased_activations():
    model, batches, z = model_and_data()
    erasers = fit_layer_erasers(model, ["0", "2"], batches, z)
    with erased_layers(model, {"0": erasers["0"]}):
        upstream_erased = collect_activations(model, "2", batches)
    # the second eraser was fitted on exactly these activations: refitting gives the same map
    refit = fit_eraser(upstream_erased, z, "leace")
    assert torch.allclose(refit.proj_left @ refit.proj_right, erasers["2"].proj_left @ erasers["2"].proj_right, atol=1e-6)
    with erased_layers(model, erasers):
        assert probe(collect_activations(model, "2", batches), z) < 0.56


def test_gradients_flow_through_the_edit():
    model, batches, z = model_and_data()
    erasers = fit_layer_erasers(model, ["0"], batches, z)
    with erased_layers(model, erasers):
        model(batches[0]).sum().backward()
    assert model[0].weight.grad is not None and torch.isfinite(model[0].weight.grad).all()


def test_unknown_layer_lists_close_names():
    model, batches, z = model_and_data()
    with pytest.raises(ConceptError, match="layer '22' is not in the model.*did you mean '2'"):
        fit_layer_erasers(model, ["22"], batches, z)


def test_label_count_must_match_inputs():
    model, batches, z = model_and_data()
    with pytest.raises(ConceptError, match="3000 examples but z has 10"):
        fit_layer_erasers(model, ["2"], batches, z[:10])
