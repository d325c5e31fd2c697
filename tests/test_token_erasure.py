"""Per-token concept erasure inside transformers (tiny BERT, real MiniLM), and erasers that follow the data's device."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression

from erasekit.concepts import collect_activations, erased_layers, fit_eraser, fit_layer_erasers
from erasekit.core.errors import ConceptError


def class_means_equal(rows: torch.Tensor, labels: np.ndarray) -> bool:
    """LEACE's guarantee on the rows it was fitted on: the concept's classes have equal means, so no
    linear probe beats a constant in any convex loss (accuracy can stay above chance: Belrose et al. 2023)."""
    x = rows.double().numpy()
    return bool(np.abs(x[labels == 0].mean(0) - x[labels == 1].mean(0)).max() < 1e-4)


def token_probe(rows: torch.Tensor, labels: np.ndarray) -> float:
    """Held-out accuracy of a linear probe on token rows (first half fits, second half scores)."""
    half = len(rows) // 2
    x = rows.double().numpy()
    probe = LogisticRegression(C=1e3, max_iter=3000).fit(x[:half], labels[:half])
    return probe.score(x[half:], labels[half:])


@pytest.fixture(scope="module")
def tiny_bert_batches():
    transformers = pytest.importorskip("transformers")
    config = transformers.BertConfig(
        vocab_size=60,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=16,
    )
    torch.manual_seed(0)
    model = transformers.BertModel(config).eval()
    with torch.no_grad():  # tokens 30..59 share a direction: the concept, present at every position
        model.embeddings.word_embeddings.weight[30:] += 1.5 * torch.randn(16)
    rng = np.random.default_rng(0)
    z = rng.integers(0, 2, 400)
    ids = np.where(z[:, None] == 1, rng.integers(30, 60, (400, 10)), rng.integers(1, 30, (400, 10)))
    mask = np.ones((400, 10), dtype=np.int64)
    mask[::3, 7:] = 0  # padded tails: never part of the fit
    ids[mask == 0] = 0
    batches = [
        {"input_ids": torch.as_tensor(ids[i : i + 50]), "attention_mask": torch.as_tensor(mask[i : i + 50])}
        for i in range(0, 400, 50)
    ]
    token_z = np.repeat(z, 10)[mask.reshape(-1) == 1]
    return model, batches, z, token_z


def test_per_token_erasure_in_a_tiny_bert(tiny_bert_batches):
    model, batches, z, token_z = tiny_bert_batches
    layer = "encoder.layer.0"
    before = collect_activations(model, layer, batches, per="token")
    assert before.shape == (len(token_z), 16), "one row per unpadded token, hidden-wide"
    assert token_probe(before, token_z) > 0.95, "positive control: every token carries the concept"
    erasers = fit_layer_erasers(model, [layer], batches, z)  # auto: a 3-D output is fitted per token
    assert erasers[layer].x_dim == 16, "a hidden×hidden eraser, not tokens×hidden"
    with erased_layers(model, erasers):
        after = collect_activations(model, layer, batches, per="token")
        output = model(**batches[0]).last_hidden_state
    assert class_means_equal(after, token_z) and not class_means_equal(before, token_z)
    assert token_probe(after, token_z) < 0.65
    assert output.shape == (50, 10, 16)
    assert not torch.allclose(after, before)


def test_per_example_erasure_of_a_transformer_layer_is_still_available(tiny_bert_batches):
    model, batches, z, _ = tiny_bert_batches
    erasers = fit_layer_erasers(model, ["encoder.layer.1"], batches, z, per="example")
    assert erasers["encoder.layer.1"].x_dim == 160
    with erased_layers(model, erasers):
        assert model(**batches[0]).last_hidden_state.shape == (50, 10, 16)


def test_pooled_output_is_erased_per_example(tiny_bert_batches):
    model, batches, z, _ = tiny_bert_batches
    before = collect_activations(model, "pooler", batches)
    assert before.shape == (400, 16)
    erasers = fit_layer_erasers(model, ["pooler"], batches, z)
    with erased_layers(model, erasers):
        pooled = collect_activations(model, "pooler", batches)
    assert token_probe(before, z) > 0.9 and class_means_equal(pooled, z) and not class_means_equal(before, z)
    assert token_probe(pooled, z) < 0.75


def test_per_token_needs_a_token_axis(tiny_bert_batches):
    model, batches, z, _ = tiny_bert_batches
    with pytest.raises(ConceptError, match="per='token' needs"):
        fit_layer_erasers(model, ["pooler"], batches, z, per="token")
    with pytest.raises(ConceptError, match="per must be one of"):
        fit_layer_erasers(model, ["pooler"], batches, z, per="word")  # type: ignore[arg-type]


def test_per_token_erasure_in_minilm():
    """The real pretrained encoder: a topic concept read off layer-3 token states, then erased per token."""
    from erasekit.models.text_encoder import load_minilm

    encoder = load_minilm()
    bert, tokenizer = encoder[0].auto_model, encoder[0].tokenizer
    animals = ["the cat sat on the mat", "a dog ran in the park", "birds sing in the morning", "the horse ate hay"]
    vehicles = ["the car drove down the road", "a truck parked by the shop", "trains leave at noon", "the bus was late"]
    sentences = [
        f"{s} {tail}"
        for tail in (
            "today",
            "again",
            "as usual",
            "quietly",
            "once more",
            "at dawn",
            "in winter",
            "every day",
            "last week",
            "by chance",
        )
        for s in animals + vehicles
    ]
    z = np.array([0 if any(s.startswith(a) for a in animals) else 1 for s in sentences])
    encoded = tokenizer(sentences, padding=True, return_tensors="pt")
    batches = [{k: v[i : i + 8] for k, v in encoded.items()} for i in range(0, len(sentences), 8)]
    layer = "encoder.layer.3"
    rows = collect_activations(bert, layer, batches, per="token")
    token_z = np.repeat(z, encoded["input_ids"].shape[1])[encoded["attention_mask"].reshape(-1).numpy() == 1]
    order = np.random.default_rng(0).permutation(len(rows))
    assert token_probe(rows[order], token_z[order]) > 0.8, "positive control: token states carry the topic"
    erasers = fit_layer_erasers(bert, [layer], batches, z)
    assert erasers[layer].x_dim == 384
    with erased_layers(bert, erasers):
        erased = collect_activations(bert, layer, batches, per="token")
    assert class_means_equal(erased, token_z) and not class_means_equal(rows, token_z)
    assert token_probe(erased[order], token_z[order]) < token_probe(rows[order], token_z[order]) - 0.15


def test_frozen_erasers_move_to_the_data_device():
    rng = np.random.default_rng(0)
    z = rng.integers(0, 2, 300)
    x = rng.normal(size=(300, 6)) + z[:, None]
    eraser = fit_eraser(x, z)
    moved = eraser.to("meta")
    assert moved.proj_left.device.type == "meta" and moved.bias.device.type == "meta"
    assert eraser.to("cpu") is eraser, "moving to where it is already is free"
    quadratic = fit_eraser(x, z, "quadratic")
    assert quadratic.to("meta").ot_maps.device.type == "meta"
    # float32 input is edited in float64 and returned as float32, on its own device
    out = eraser(torch.as_tensor(x, dtype=torch.float32))
    assert out.dtype == torch.float32 and out.device.type == "cpu"
