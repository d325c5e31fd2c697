"""Eraser contract for every registered eraser, with positive controls, and the bad-input catalogue."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline

from erasekit.concepts import (
    ConceptEraserTransformer,
    INLPParams,
    available_erasers,
    eraser_fitter,
    fit_eraser,
    load_eraser,
    save_eraser,
)
from erasekit.concepts.encoding import ConceptEncoding
from erasekit.core.errors import ConceptError, MethodError


def concept_data(n=3000, d=8, classes=2, seed=0):
    """Features where the concept is linearly decodable from two correlated columns."""
    rng = np.random.default_rng(seed)
    z = rng.integers(0, classes, n)
    x = rng.normal(size=(n, d))
    x[:, 0] += 1.5 * z
    x[:, 1] += 0.7 * x[:, 0] - 0.8 * (z == classes - 1)
    return x, z


def linear_probe_accuracy(x, z):
    half = len(x) // 2
    return LogisticRegression(C=1e4, max_iter=2000).fit(x[:half], z[:half]).score(x[half:], z[half:])


def majority(z):
    return np.bincount(z[len(z) // 2 :]).max() / len(z[len(z) // 2 :])


@pytest.mark.parametrize("method", available_erasers())
@pytest.mark.parametrize("classes", [2, 3])
def test_eraser_removes_linear_information(method, classes):
    x, z = concept_data(classes=classes)
    before = linear_probe_accuracy(x, z)
    assert before > majority(z) + 0.15, "positive control: the probe finds the concept before erasure"
    eraser = fit_eraser(x, z, method)
    erased = eraser(x, z) if eraser.needs_labels else eraser(x)
    assert erased.shape == x.shape and isinstance(erased, np.ndarray)
    assert linear_probe_accuracy(erased, z) < majority(z) + 0.04


def test_numeric_concept():
    rng = np.random.default_rng(1)
    z = rng.normal(size=4000)
    x = rng.normal(size=(4000, 12))
    x[:, 2] += 2 * z
    r2 = LinearRegression().fit(x[:2000], z[:2000]).score(x[2000:], z[2000:])
    assert r2 > 0.5  # positive control
    for method, params in (("leace", None), ("leace_orth", None), ("inlp", INLPParams(iterations=3))):
        erased = fit_eraser(x, z, method, params)(x)
        assert erased.var(axis=0).sum() > 0.5 * x.var(axis=0).sum(), "most of the representation must survive"
        assert LinearRegression().fit(erased[:2000], z[:2000]).score(erased[2000:], z[2000:]) < 0.01, method
    with pytest.raises(ConceptError, match="needs class labels"):
        fit_eraser(x, z, "quadratic")


def test_leace_matches_concept_erasure_directly():
    from concept_erasure import LeaceFitter

    x, z = concept_data()
    ours = fit_eraser(x, z, "leace")(x)
    xt = torch.as_tensor(x)
    theirs = LeaceFitter.fit(xt, torch.nn.functional.one_hot(torch.as_tensor(z)).double()).eraser(xt).numpy()
    assert np.allclose(ours, theirs, atol=1e-8)


def test_leace_edit_is_smaller_than_inlp():
    x, z = concept_data()
    edit = {m: float(((fit_eraser(x, z, m)(x) - x) ** 2).sum(1).mean()) for m in ("leace", "inlp")}
    assert edit["leace"] < edit["inlp"]


@pytest.mark.parametrize(
    "method, params", [("leace", None), ("leace_orth", None), ("inlp", INLPParams(classifier="least_squares"))]
)
def test_streaming_fit_equals_one_shot(method, params):
    x, z = concept_data()
    encoding = ConceptEncoding.infer(z)
    fitter = eraser_fitter(method, x.shape[1], encoding, params)
    for start in range(0, len(x), 700):
        fitter.update(x[start : start + 700], z[start : start + 700])
    streamed = fitter.eraser()(x)
    one_shot = fit_eraser(x, z, method, params)(x)
    assert np.allclose(streamed, one_shot, atol=1e-6)


@pytest.mark.parametrize("method", available_erasers())
def test_save_and_load_round_trip(method, tmp_path):
    x, z = concept_data(classes=3)
    eraser = fit_eraser(x, z, method)
    save_eraser(eraser, tmp_path / "e.safetensors")
    loaded = load_eraser(tmp_path / "e.safetensors")
    apply = (lambda e: e(x, z)) if eraser.needs_labels else (lambda e: e(x))
    assert np.array_equal(apply(eraser), apply(loaded))
    assert loaded.encoding == eraser.encoding and loaded.method == eraser.method


def test_tensor_in_tensor_out():
    x, z = concept_data()
    eraser = fit_eraser(x, z, "leace")
    out = eraser(torch.as_tensor(x, dtype=torch.float32))
    assert torch.is_tensor(out) and out.dtype == torch.float32


def test_sklearn_pipeline():
    x, z = concept_data()
    plain = LogisticRegression(C=1e4, max_iter=2000).fit(x[:1500], z[:1500])
    assert plain.score(x[1500:], z[1500:]) > majority(z) + 0.15  # positive control: same probe, no eraser
    # the concept rides along as column 0 (the transformer takes it out); y is the probe's target only
    with_concept = np.c_[z, x]
    pipe = make_pipeline(ConceptEraserTransformer("leace", concept_column=0), LogisticRegression(C=1e4, max_iter=2000))
    pipe.fit(with_concept[:1500], z[:1500])
    assert pipe.score(with_concept[1500:], z[1500:]) < majority(z) + 0.05
    frozen = ConceptEraserTransformer(eraser=fit_eraser(x, z, "leace")).fit(x)
    assert frozen.transform(x).shape == x.shape
    with pytest.raises(ConceptError, match="quadratic"):
        ConceptEraserTransformer("quadratic").fit(x, z)


# --- bad input: one test per case -------------------------------------------------------


def test_length_mismatch():
    x, z = concept_data()
    with pytest.raises(ConceptError, match="3000 samples but Z has 2999"):
        fit_eraser(x, z[:-1])


def test_single_class():
    x, _ = concept_data()
    with pytest.raises(ConceptError, match="single class"):
        fit_eraser(x, np.zeros(len(x), dtype=int))


def test_nan_and_inf():
    x, z = concept_data()
    x[5, 2] = np.nan
    with pytest.raises(ConceptError, match="NaN or inf .*row 5"):
        fit_eraser(x, z)
    x[5, 2] = np.inf
    with pytest.raises(ConceptError, match="NaN or inf"):
        fit_eraser(x, z)


def test_too_few_samples_says_how_many():
    x, z = concept_data(n=20, d=50)
    with pytest.raises(ConceptError, match="at least 51 samples"):
        fit_eraser(x, z, "leace")
    with pytest.raises(ConceptError, match="at least 51 samples"):
        fit_eraser(x, z, "quadratic")


def test_wrong_width_at_apply_time():
    x, z = concept_data()
    eraser = fit_eraser(x, z)
    with pytest.raises(ConceptError, match="fitted on 8 features but got data with 5"):
        eraser(x[:, :5])


def test_quadratic_needs_labels_when_applied():
    x, z = concept_data()
    eraser = fit_eraser(x, z, "quadratic")
    with pytest.raises(ConceptError, match="needs the concept labels when applied"):
        eraser(x)


def test_unknown_eraser_suggests():
    x, z = concept_data()
    with pytest.raises(MethodError, match="did you mean 'leace'"):
        fit_eraser(x, z, "leac")


def test_unseen_concept_value():
    x, z = concept_data()
    eraser = fit_eraser(x, z, "quadratic")
    with pytest.raises(ConceptError, match="not seen"):
        eraser(x[:3], np.array([0, 1, 7]))
