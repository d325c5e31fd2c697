"""Model files (safetensors + sidecar), fresh initialisation, the training loop."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from conftest import QUICK_RECIPE
from erasekit.audit import accuracy, predict_logits
from erasekit.core.errors import ModelError
from erasekit.core.provenance import sha256_state
from erasekit.models import ModelSpec
from erasekit.training import Recipe, fresh_init, load_model, save_model, train


def test_save_and_load_round_trip(tmp_path, trained_mlp, digits_spec, digits):
    path = tmp_path / "m.safetensors"
    save_model(trained_mlp, path, digits_spec, QUICK_RECIPE, "digits", digits.sha256(), seed=0)
    sidecar = json.loads((tmp_path / "m.json").read_text())
    assert sidecar["architecture"]["architecture"] == "mlp"
    assert sidecar["data"]["sha256"] == digits.sha256()
    assert sidecar["recipe"] == QUICK_RECIPE.to_dict()
    loaded = load_model(path)
    assert loaded.weights_sha256 == sha256_state(trained_mlp) == sidecar["weights_sha256"]
    assert loaded.recipe == QUICK_RECIPE


def test_tampered_weights_are_refused(tmp_path, trained_mlp, digits_spec, digits):
    path = tmp_path / "m.safetensors"
    save_model(trained_mlp, path, digits_spec, QUICK_RECIPE, "digits", digits.sha256(), seed=0)
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="does not match its sidecar"):
        load_model(path)


def test_missing_sidecar_and_wrong_suffix(tmp_path, trained_mlp, digits_spec, digits):
    path = tmp_path / "m.safetensors"
    save_model(trained_mlp, path, digits_spec, QUICK_RECIPE, "digits", digits.sha256(), seed=0)
    (tmp_path / "m.json").unlink()
    with pytest.raises(ModelError, match="no sidecar"):
        load_model(path)
    with pytest.raises(ModelError, match=".safetensors"):
        load_model(tmp_path / "m.pt")


def test_cnn_needs_images():
    with pytest.raises(ModelError, match="image input"):
        ModelSpec("cnn", (12,), 2).build()
    assert ModelSpec("cnn", (1, 8, 8), 10).build()(torch.zeros(2, 1, 8, 8)).shape == (2, 10)


def test_training_is_deterministic_and_learns(digits, digits_spec):
    recipe = Recipe(epochs=3)
    a = train(digits_spec.build(seed=1), digits.train, recipe, seed=1)
    b = train(digits_spec.build(seed=1), digits.train, recipe, seed=1)
    assert sha256_state(a) == sha256_state(b)
    assert accuracy(*predict_logits(a, digits.test)) > 0.85


def test_fresh_init_redraws_every_parameter(trained_mlp):
    fresh = fresh_init(trained_mlp, seed=3)
    for (name, old), new in zip(trained_mlp.named_parameters(), fresh.parameters()):
        assert not torch.equal(old, new), name
    assert sha256_state(fresh) == sha256_state(fresh_init(trained_mlp, seed=3))


def test_fresh_init_refuses_modules_it_cannot_reset():
    class Scaled(nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = nn.Parameter(torch.ones(3))

        def forward(self, x):
            return x * self.scale

    with pytest.raises(ModelError, match="reset_parameters"):
        fresh_init(nn.Sequential(nn.Linear(3, 3), Scaled()), seed=0)
