"""Concept erasure in a real pretrained encoder (all-MiniLM-L6-v2, offline), with held-out paraphrases."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression

from erasekit.audit.text_edit import row_cosines
from erasekit.concepts import INLPParams, fit_eraser
from erasekit.data.sentences import UNRELATED, gender_sentences
from erasekit.models.text_encoder import encode, load_minilm


@pytest.fixture(scope="module")
def encoded():
    model = load_minilm()
    fit, held = gender_sentences(), gender_sentences(held_out=True)
    return {
        "fit": (encode(model, fit.sentences), fit.labels),
        "held": (encode(model, held.sentences), held.labels),
        "unrelated": encode(model, UNRELATED),
    }


def held_out_probe(x_fit, z_fit, x_held, z_held):
    """An L2-regularised linear probe (C = 1e3). The audit's *unpenalised* probe still reads
    gender off LEACE-erased held-out paraphrases (0.997, benchmarks/results/concepts.md):
    LEACE equalises class means, which bounds convex losses, not accuracy."""
    return LogisticRegression(C=1e3, max_iter=5000).fit(x_fit, z_fit).score(x_held, z_held)


def test_sentence_sets_do_not_overlap():
    fit, held = gender_sentences(), gender_sentences(held_out=True)
    assert not set(fit.sentences) & set(held.sentences)
    assert np.bincount(fit.labels).tolist() == [len(fit.labels) // 2] * 2


@pytest.mark.parametrize("method, params", [("leace", None), ("inlp", INLPParams(iterations=8))])
def test_gender_is_erased_from_sentence_embeddings(encoded, method, params):
    x_fit, z_fit = encoded["fit"]
    x_held, z_held = encoded["held"]
    before = held_out_probe(x_fit, z_fit, x_held, z_held)
    assert before > 0.9, "positive control: a linear probe reads gender off held-out paraphrases"
    eraser = fit_eraser(x_fit, z_fit, method, params)
    after = held_out_probe(eraser(x_fit), z_fit, eraser(x_held), z_held)
    assert after < 0.65
    # the edit is small: held-out and unrelated sentences stay close to their original embeddings
    assert row_cosines(eraser(x_held), x_held).mean() > 0.9
    assert row_cosines(eraser(encoded["unrelated"]), encoded["unrelated"]).mean() > 0.9


def test_linear_edit_makes_names_embed_like_the_anchor():
    """Names → "someone" in a real layer of MiniLM; unrelated sentences barely move; undo restores."""
    from erasekit.audit.text_edit import edit_report
    from erasekit.concepts.text_edit import edit_text_concepts
    from erasekit.data.sentences import NAME_ANCHOR, NAME_TEMPLATES_FIT, NAME_TEMPLATES_HELD_OUT, NAMES, UNRELATED_PRESERVE

    model = load_minilm()
    before = encode(model, UNRELATED)
    edit = edit_text_concepts(model, NAMES[:10], NAME_ANCHOR, NAME_TEMPLATES_FIT, UNRELATED_PRESERVE)
    stats = edit_report(model, edit, NAME_TEMPLATES_HELD_OUT, NAMES[:10], NAME_ANCHOR, UNRELATED)
    # positive control: before the edit, name sentences are clearly not the anchor sentence
    assert stats["fit_cos_to_anchor_before"] < stats["fit_cos_to_anchor_after"]
    assert stats["fit_success_rate"] >= 0.9
    assert stats["held_cos_to_anchor_after"] > stats["held_cos_to_anchor_before"]
    assert stats["unrelated_cos_min"] >= 0.95
    assert np.allclose(encode(model, UNRELATED), before, atol=1e-5), "edit_report must undo the edit"


def test_token_projection_filters_concept_sentences_only():
    """Training-free filter: concept tokens are found and projected; unrelated sentences are untouched."""
    from erasekit.concepts.token_projection import concept_subspace, distance_to_subspace, filter_sentence

    model = load_minilm()
    basis = concept_subspace(model, ["violence", "weapon", "gun", "fight"])
    concept_sentence = "The man pulled out a gun in the crowded street."
    filtered = filter_sentence(model, concept_sentence, basis)
    original = encode(model, [concept_sentence])[0]
    assert "gun" in filtered.triggers  # positive control: the concept token is detected
    before = distance_to_subspace(torch.as_tensor(original), basis)
    after = distance_to_subspace(torch.as_tensor(filtered.embedding), basis)
    assert after > before, "the filtered embedding moves away from the concept subspace"
    calm = filter_sentence(model, "The library has thousands of old maps.", basis)
    assert np.dot(calm.embedding, encode(model, ["The library has thousands of old maps."])[0]) > 0.99
