"""Concept erasure in a real pretrained encoder (all-MiniLM-L6-v2, offline), with held-out paraphrases."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from erasekit.concepts import INLPParams, fit_eraser
from erasekit.concepts.text import UNRELATED, encode, gender_sentences, load_minilm, row_cosines


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
