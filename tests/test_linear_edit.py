"""Closed-form linear-layer edits: the formula, erase/preserve behaviour, undo, RECE, neighbours."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from erasekit.concepts import LinearEditParams, edit_linear
from erasekit.core.errors import ConceptError


def layer_and_keys(seed=0, d_in=16, d_out=8):
    torch.manual_seed(seed)
    layer = nn.Linear(d_in, d_out)
    rng = np.random.default_rng(seed)
    erase = rng.normal(size=(3, d_in))
    anchor = rng.normal(size=(1, d_in))
    preserve = rng.normal(size=(10, d_in))  # leaves room: 40 random keys would span all 16 dims
    return layer, erase, anchor, preserve


def test_matches_the_closed_form_by_hand():
    layer, erase, anchor, preserve = layer_and_keys()
    params = LinearEditParams(lam=0.5)
    result = edit_linear(layer, erase, anchor_keys=anchor, preserve_keys=preserve, params=params)
    w = layer.weight.detach().double().numpy()
    v = np.repeat(anchor @ w.T, 3, axis=0)
    lhs = erase.T @ erase + preserve.T @ preserve + 0.5 * np.eye(16)
    rhs = v.T @ erase + w @ preserve.T @ preserve + 0.5 * w
    expected = rhs @ np.linalg.inv(lhs)
    edit = result.edits["layer"]
    assert np.allclose(w + edit.delta_weight.numpy(), expected, atol=1e-10)
    assert edit.condition_number == pytest.approx(np.linalg.cond(lhs), rel=1e-6)


def test_erased_keys_map_to_the_anchor_and_preserved_keys_stay():
    layer, erase, anchor, preserve = layer_and_keys()
    x_erase = torch.as_tensor(erase, dtype=torch.float32)
    x_keep = torch.as_tensor(preserve, dtype=torch.float32)
    target = layer(torch.as_tensor(anchor, dtype=torch.float32))
    before_keep = layer(x_keep).detach()
    gap_before = (layer(x_erase) - target).norm(dim=1).mean().item()
    result = edit_linear(layer, erase, anchor_keys=anchor, preserve_keys=preserve, params=LinearEditParams(lam=0.01))
    bias = layer.bias.detach().clone()
    with result.applied({"layer": layer}):
        gap_after = (layer(x_erase) - target).norm(dim=1).mean().item()
        drift = (layer(x_keep) - before_keep).norm(dim=1).mean().item()
        assert torch.equal(layer.bias, bias), "the bias is not edited"
    assert gap_before > 1.0 and gap_after < 0.1 * gap_before  # control: far from the anchor before
    assert drift < 0.05 * before_keep.norm(dim=1).mean().item()


def test_undo_restores_the_weights():
    layer, erase, anchor, preserve = layer_and_keys()
    original = layer.weight.detach().clone()
    result = edit_linear(layer, erase, anchor_keys=anchor, preserve_keys=preserve)
    result.apply({"layer": layer})
    assert not torch.allclose(layer.weight, original)
    result.undo({"layer": layer})
    assert torch.allclose(layer.weight, original, atol=1e-6)


def test_preserve_moment_equals_explicit_keys():
    layer, erase, anchor, preserve = layer_and_keys()
    a = edit_linear(layer, erase, anchor_keys=anchor, preserve_keys=preserve).edits["layer"].delta_weight
    b = edit_linear(layer, erase, anchor_keys=anchor, preserve_moment=preserve.T @ preserve).edits["layer"].delta_weight
    assert torch.allclose(a, b, atol=1e-10)


def test_several_layers_sharing_one_input():
    layer, erase, anchor, preserve = layer_and_keys()
    other = nn.Linear(16, 4)
    result = edit_linear({"q": layer, "v": other}, erase, anchor_keys=anchor, preserve_keys=preserve)
    assert set(result.edits) == {"q", "v"} and result.edits["v"].delta_weight.shape == (4, 16)


def test_rece_and_neighbours_grow_the_erase_set_and_erase_paraphrases():
    layer, erase, anchor, preserve = layer_and_keys()
    rng = np.random.default_rng(5)
    paraphrases = erase + 0.3 * rng.normal(size=erase.shape) * np.linalg.norm(erase, axis=1, keepdims=True) / 4
    target = layer(torch.as_tensor(anchor, dtype=torch.float32)).detach()

    def paraphrase_gap(params):
        result = edit_linear(layer, erase, anchor_keys=anchor, preserve_keys=preserve, params=params)
        with result.applied({"layer": layer}):
            return (layer(torch.as_tensor(paraphrases, dtype=torch.float32)) - target).norm(dim=1).mean().item(), result

    plain, _ = paraphrase_gap(LinearEditParams())
    widened, result = paraphrase_gap(LinearEditParams(neighbors=20, neighbor_scale=0.3))
    assert result.edits["layer"].erase_keys == 3 + 3 * 20
    assert widened < plain
    _, rece = paraphrase_gap(LinearEditParams(rece_iterations=2))
    assert rece.edits["layer"].erase_keys == 3 * 3


def test_non_linear_layer_is_refused():
    with pytest.raises(ConceptError, match="Conv1d, not nn.Linear"):
        edit_linear({"conv": nn.Conv1d(4, 4, 1)}, np.zeros((1, 4)), anchor_keys=np.zeros((1, 4)))


def test_key_width_must_match_the_layer():
    layer, _, anchor, _ = layer_and_keys()
    with pytest.raises(ConceptError, match=r"shape \[n, 16\]"):
        edit_linear(layer, np.zeros((2, 5)), anchor_keys=anchor)
