"""Black-box top-k interpretation, Rashomon-set interaction scores, and layer masking for CNNs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from erasekit.audit.interactions import rashomon_interactions
from erasekit.audit.interpretation import interpret_black_box
from erasekit.audit.masking import layer_masked_logits, masking_comparison, neighbour_fill, propagate_mask
from erasekit.core.errors import FieldError, ModelError


@pytest.fixture(scope="module")
def wide_problem():
    """200 columns; the class is decided by columns 3 and 17 (balanced classes)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1500, 200))
    y = (X[:, 3] + X[:, 17] > 0).astype(int)
    return X[:1000], y[:1000], X[1000:], y[1000:]


def test_black_box_top_k_finds_what_the_model_uses_and_a_faithful_surrogate(wide_problem):
    from sklearn.ensemble import RandomForestClassifier

    X_train, y_train, X_held, _ = wide_problem
    model = RandomForestClassifier(n_estimators=100, random_state=0).fit(X_train, y_train)
    result = interpret_black_box(model, X_train, X_held, k=2, max_depth=3, seed=0)
    assert set(result.features) == {"x3", "x17"}
    noise = max(result.reliance[f"x{j}"] for j in range(200) if j not in (3, 17))
    assert min(result.reliance["x3"], result.reliance["x17"]) > 5 * noise, "noise columns barely move the predictions"
    assert result.fidelity > 0.8 and "x3" in result.rules and "x17" in result.rules
    assert result.local and all(step.split()[0] in ("x3", "x17") for step in result.local[0].path)
    wrong = interpret_black_box(model, X_train, X_held, k=2, max_depth=2, feature_names=[f"c{j}" for j in range(200)])
    assert set(wrong.features) == {"c3", "c17"}
    # positive control for fidelity: a surrogate on two noise columns cannot mimic the model
    from erasekit.audit.interpretation import TopKInterpretation

    assert isinstance(result, TopKInterpretation)
    from sklearn.tree import DecisionTreeClassifier

    noise_tree = DecisionTreeClassifier(max_depth=3).fit(X_train[:, [50, 60]], model.predict(X_train))
    assert noise_tree.score(X_held[:, [50, 60]], model.predict(X_held)) < result.fidelity - 0.2


def test_black_box_input_errors(wide_problem):
    from sklearn.dummy import DummyClassifier

    X_train, y_train, X_held, _ = wide_problem
    model = DummyClassifier().fit(X_train, y_train)
    with pytest.raises(FieldError, match="k=500 is out of range"):
        interpret_black_box(model, X_train, X_held, k=500)
    with pytest.raises(FieldError, match="same columns"):
        interpret_black_box(model, X_train, X_held[:, :5])


def test_rashomon_interactions_find_the_interacting_pair_and_report_its_spread():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 5))
    y = ((X[:, 0] * X[:, 1] > 0) ^ (X[:, 2] > 1.0)).astype(int)  # 0×1 interact; 2 acts alone; 3, 4 are noise
    flip = rng.random(2000) < 0.1
    y = np.where(flip, 1 - y, y)  # label noise: the good models' losses differ by a few percent
    result = rashomon_interactions(X[:1400], y[:1400], X[1400:], y[1400:], features=[0, 1, 2, 3], n_models=6, epsilon=0.1)
    assert 2 <= result.set_size <= 6 and len(result.losses) == result.set_size
    strongest = result.pairs[0]
    assert strongest.features == ("x0", "x1") and strongest.mean < -0.1, "an XOR: shuffling either one destroys it"
    assert strongest.min <= strongest.mean <= strongest.max and len(strongest.per_model) == result.set_size
    noise_pair = next(p for p in result.pairs if p.features == ("x2", "x3"))
    assert abs(noise_pair.mean) < 0.05 * abs(strongest.mean), "no interaction between an additive and a noise feature"
    with pytest.raises(FieldError, match="n_models ≥ 2"):
        rashomon_interactions(X, y, X, y, n_models=1)


def test_mask_propagation_and_neighbour_fill_by_hand():
    mask = torch.zeros(1, 1, 6, 6, dtype=torch.bool)
    mask[0, 0, 2, 2] = True
    grown = propagate_mask(mask, nn.Conv2d(1, 1, 3, padding=1))
    assert grown[0, 0].nonzero().tolist() == [[r, c] for r in (1, 2, 3) for c in (1, 2, 3)]
    assert propagate_mask(mask, nn.MaxPool2d(2))[0, 0].nonzero().tolist() == [[1, 1]]
    x = torch.full((1, 2, 6, 6), 3.0)
    x[0, :, 2, 2] = 100.0  # the value under the mask never leaks into the fill
    assert torch.allclose(neighbour_fill(x, mask), torch.full((1, 2, 6, 6), 3.0))


def small_cnn():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 8, 3, padding=1), nn.ReLU(),
        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8 * 4 * 4, 10),
    )  # fmt: skip


def test_layer_masking_ignores_whatever_is_under_the_mask():
    model = small_cnn().eval()
    x = torch.rand(4, 1, 16, 16)
    mask = torch.zeros(4, 1, 16, 16, dtype=torch.bool)
    mask[:, :, 2:6, 3:7] = True
    other = torch.where(mask, torch.rand_like(x) * 5, x)
    with torch.no_grad():
        assert not torch.allclose(model(x), model(other)), "positive control: the plain model sees the masked pixels"
        assert torch.allclose(layer_masked_logits(model, x, mask), layer_masked_logits(model, other, mask), atol=1e-6)
        nothing = torch.zeros_like(mask)
        assert torch.allclose(layer_masked_logits(model, x, nothing), model(x), atol=1e-6)
    with pytest.raises(ModelError, match="nn.Sequential"):
        layer_masked_logits(nn.ModuleList([nn.Conv2d(1, 1, 3)]), x, mask)  # type: ignore[arg-type]


def test_grey_masks_change_predictions_on_blank_background_and_layer_masking_does_not():
    """MNIST (black background): a grey square is a shape the CNN reacts to; black on black changes nothing.

    Layer masking never shows the network the mask (test_layer_masking_ignores_whatever_is_under_the_mask), but
    its mask grows with every 3×3 convolution and pooling: on 28×28 digits a 6×6 blank square reaches the strokes
    by the last feature map (a 4×4 square covers 16×16 input pixels there), so its changes on "blank" squares are evidence removed, not shape. Reported, not hidden."""
    from conftest import require_shared
    from erasekit.data import load_mnist
    from erasekit.models import ModelSpec
    from erasekit.training import Recipe, train

    splits = load_mnist(require_shared("mnist")).subsample_train(3000)
    model = train(ModelSpec("cnn", (1, 28, 28), 10).build(seed=0), splits.train, Recipe(epochs=2, batch_size=64), seed=0)
    result = masking_comparison(model, splits.test.x[:400], mask_size=6, masks_per_image=3, seed=0)
    rows = {row.strategy: row for row in result.rows}
    assert result.blank_masks > 50 and result.object_masks > 50
    assert rows["grey"].change_on_blank > 0.02, "the grey shape alone moves predictions"
    assert rows["black"].change_on_blank == pytest.approx(0.0, abs=1e-9), "black on a black background changes nothing"
    assert rows["grey"].shape_share > 0.5, "most of what a grey square does on MNIST is its own shape"
    assert rows["layer"].change_on_object > rows["layer"].change_on_blank, "removing strokes moves predictions more"


def test_masking_comparison_input_errors():
    with pytest.raises(ModelError, match="mask_size must be between 1 and 15"):
        masking_comparison(small_cnn(), torch.zeros(2, 1, 16, 16), mask_size=16)
