"""CTR data (readers, field encoding, synthetic ground truth) and CTR models, with the bad-input catalogue."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import require_shared
from erasekit.core.errors import DataError, FieldError
from erasekit.data.ctr import (
    CRITEO_COLUMNS,
    FieldEncoder,
    binary_labels,
    load_field_data,
    make_synthetic_ctr,
    read_criteo,
    read_libsvm,
)
from erasekit.data.tables import read_table
from erasekit.models.ctr import CTRClassifier, CTRModel, CTRRecipe, CTRSpec, evaluate, predict_logits, score_logits, train_ctr

FAST = CTRRecipe(max_epochs=3, batch_size=256)


@pytest.fixture(scope="module")
def synthetic_tables():
    synthetic = make_synthetic_ctr(n_rows=6000, seed=0)
    frame = synthetic.frame.copy()
    labels = frame.pop(synthetic.target).to_numpy()
    encoder = FieldEncoder().fit(frame.iloc[:4000])
    split = lambda a, b: encoder.transform(frame.iloc[a:b], labels[a:b])  # noqa: E731
    return synthetic, split(0, 4000), split(4000, 5000), split(5000, 6000)


# ------------------------------------------------------------------ readers


def test_criteo_sample_reads_with_numeric_and_categorical_fields():
    path = require_shared("ctr_samples") / "criteo_sample.txt"
    frame = read_criteo(path)
    assert frame.shape == (200, 40) and tuple(frame.columns) == CRITEO_COLUMNS
    assert set(frame["label"].unique()) <= {0, 1}
    assert frame["I1"].dtype == np.float64 and frame["I1"].isna().any()  # empty cells are missing
    assert frame["C1"].dtype == object


def test_criteo_headerless_tsv(tmp_path):
    line = "\t".join(["1", "5"] + [""] * 12 + ["abc"] + [""] * 25)
    path = tmp_path / "train.txt"
    path.write_text(line + "\n" + line.replace("1\t5", "0\t7", 1) + "\n")
    frame = read_criteo(path)
    assert frame["label"].tolist() == [1, 0] and frame["I1"].tolist() == [5.0, 7.0] and frame["C1"].tolist() == ["abc", "abc"]


@pytest.mark.parametrize(
    "bad_line, message",
    [
        ("0,1,2", "expected 40 fields"),
        ("2" + ",1" * 39, "label must be 0 or 1"),
        ("0,x" + ",1" * 38, "numeric field I1 is not a number"),
    ],
)
def test_malformed_criteo_line_names_its_line_number(tmp_path, bad_line, message):
    good = "0" + "," * 39
    path = tmp_path / "c.csv"
    path.write_text(",".join(CRITEO_COLUMNS) + "\n" + good + "\n" + good + "\n" + bad_line + "\n")
    with pytest.raises(DataError, match=f"c.csv:4: {message}"):
        read_criteo(path)


def test_libsvm_and_libffm_lines(tmp_path):
    svm = tmp_path / "a.svm"
    svm.write_text("1 1:0.5 3:2\n-1 2:1  # comment\n\n0 1:1.5\n")
    frame = read_libsvm(svm)
    assert frame["label"].tolist() == [1, 0, 0]
    assert list(frame.columns) == ["label", "f1", "f2", "f3"] and frame["f3"].tolist() == [2.0, 0.0, 0.0]
    ffm = tmp_path / "a.ffm"
    ffm.write_text("1 0:12:1 1:40:1\n0 0:13:1\n")
    frame = read_libsvm(ffm)
    assert frame["field0"].tolist() == ["12", "13"] and frame["field1"].tolist()[1] is None


@pytest.mark.parametrize(
    "bad_line, message",
    [
        ("1 3", "bad feature '3'"),
        ("x 1:2", "first token must be the label"),
        ("2 1:2", "label must be 0/1 or -1/"),
        ("1 a:2", "indices must be integers"),
        ("1 0:1:1", "consistently"),  # a libFFM token after libSVM lines
    ],
)
def test_malformed_libsvm_line_names_its_line_number(tmp_path, bad_line, message):
    path = tmp_path / "bad.svm"
    path.write_text("1 1:1\n" + bad_line + "\n")
    with pytest.raises(DataError, match=f"bad.svm:2: .*{message}"):
        read_libsvm(path)


def test_parquet_and_declared_categorical_columns(tmp_path):
    frame = pd.DataFrame({"zip": [10115, 10117, 10115, 80331], "x": [0.1, 0.2, 0.3, 0.4], "y": [0, 1, 0, 1]})
    frame.to_parquet(tmp_path / "t.parquet")
    frame.to_csv(tmp_path / "t.csv", index=False)
    assert read_table(tmp_path / "t.parquet").equals(frame)
    read = read_table(tmp_path / "t.csv", categorical=["zip"])
    assert read["zip"].tolist() == ["10115", "10117", "10115", "80331"]
    encoder = FieldEncoder(categorical=["zip"]).fit(read.drop(columns="y"))
    assert [f.kind for f in encoder.fields_] == ["categorical", "numeric"]
    with pytest.raises(DataError, match="categorical column 'zipp' is not in"):
        read_table(tmp_path / "t.csv", categorical=["zipp"])


def test_unknown_data_source_suggests_the_right_one():
    with pytest.raises(DataError, match="did you mean 'criteo'"):
        load_field_data("critoe:/x")


# ------------------------------------------------------------------ encoding


def test_unseen_missing_and_rare_categories_map_to_the_reserved_index():
    train = pd.DataFrame({"c": ["a", "a", "b", "b", "b", "rare", None], "x": [1.0, 2, 3, 4, 5, 6, 7]})
    encoder = FieldEncoder(min_count=2).fit(train)
    table = encoder.transform(pd.DataFrame({"c": ["b", "a", "never-seen", None, "rare"], "x": [1.0, 2, 3, 4, np.nan]}))
    assert table.codes[:, 0].tolist() == [1, 2, 0, 0, 0]  # b is most frequent → 1; unseen/missing/rare → 0
    assert encoder.fields_[0].vocab_size == 3
    assert table.numeric[4, 0] == 0.0  # missing numeric → the training mean
    assert np.isclose(table.numeric[:4, 0], (np.array([1, 2, 3, 4]) - 4) / np.std(np.arange(1, 8))).all()


def test_hashing_is_stable_and_within_the_stated_buckets():
    values = pd.DataFrame({"id": [f"user{i}" for i in range(5000)]})
    first = FieldEncoder(hash_buckets=64).fit(values).transform(values).codes[:, 0]
    second = FieldEncoder(hash_buckets=64).fit(values.iloc[::-1]).transform(values).codes[:, 0]
    assert (first == second).all() and first.min() >= 1 and first.max() <= 64
    assert len(np.unique(first)) > 50  # spreads over the buckets
    assert FieldEncoder(hash_buckets=64).fit(values).fields_[0].vocab_size == 65


def test_all_missing_column_is_an_error_naming_it():
    frame = pd.DataFrame({"a": [1.0, 2.0], "empty": [np.nan, np.nan]})
    with pytest.raises(FieldError, match="column 'empty' is missing in every row; drop it"):
        FieldEncoder().fit(frame)


def test_columns_that_differ_at_transform_are_an_error():
    encoder = FieldEncoder().fit(pd.DataFrame({"a": [1.0, 2.0], "b": ["x", "y"]}))
    with pytest.raises(FieldError, match=r"missing \['b'\], unexpected \['c'\]"):
        encoder.transform(pd.DataFrame({"a": [1.0], "c": ["x"]}))


@pytest.mark.parametrize(
    "values, message",
    [
        (["yes", "yes", "yes"], "single class"),
        ([0, 1, 2], "must be binary"),
        ([0, None, 1], "missing values"),
    ],
)
def test_targets_that_are_not_binary_clicks_are_errors(values, message):
    with pytest.raises(FieldError, match=message):
        binary_labels(pd.Series(values, dtype=object))


def test_synthetic_generator_is_seeded_and_its_relevant_fields_matter():
    a, b = make_synthetic_ctr(n_rows=3000, seed=3), make_synthetic_ctr(n_rows=3000, seed=3)
    pd.testing.assert_frame_equal(a.frame, b.frame)
    assert set(a.relevant) | set(a.proxies) | set(a.irrelevant) | {a.target} == set(a.frame.columns)
    # Positive control for the ground truth: a relevant categorical field shifts the click rate, a noise field does not.
    rates = lambda column: a.frame.groupby(column)[a.target].mean()  # noqa: E731
    assert rates("r3").max() - rates("r3").min() > 0.3
    assert rates("n1").max() - rates("n1").min() < 0.2


# ------------------------------------------------------------------ models


@pytest.mark.parametrize("kind", ["lr", "fm", "deepfm", "dcn"])
def test_every_ctr_model_learns_the_synthetic_clicks(synthetic_tables, kind):
    _, train, valid, test = synthetic_tables
    model = train_ctr(
        CTRModel(train.fields, CTRSpec(kind)),
        train,
        valid,
        CTRRecipe(max_epochs=4, batch_size=256, lr=1e-2 if kind == "lr" else 1e-3),
    )
    untrained = evaluate(CTRModel(train.fields, CTRSpec(kind)), test).auc
    assert evaluate(model, test).auc > 0.75 > untrained + 0.1


def test_a_zero_gate_removes_a_field_from_the_forward_pass(synthetic_tables):
    _, train, _, test = synthetic_tables
    model = CTRModel(train.fields, CTRSpec("deepfm"))
    gate = torch.ones(len(train.fields))
    gate[0] = 0.0
    shuffled = test.rows(np.arange(len(test)))
    codes = shuffled.codes.copy()
    codes[:, 0] = np.random.default_rng(0).permutation(codes[:, 0])
    changed = type(test)(test.fields, codes, test.numeric, test.labels)
    assert np.allclose(predict_logits(model, test, gate), predict_logits(model, changed, gate))
    assert not np.allclose(predict_logits(model, test), predict_logits(model, changed))  # positive control


def test_non_binary_or_one_class_training_labels_are_refused(synthetic_tables):
    _, train, valid, _ = synthetic_tables
    three = type(train)(train.fields, train.codes, train.numeric, (np.arange(len(train)) % 3).astype(np.float32))
    with pytest.raises(FieldError, match="must be 0/1 clicks"):
        train_ctr(CTRModel(train.fields), three, None, FAST)
    ones = type(train)(train.fields, train.codes, train.numeric, np.ones(len(train), np.float32))
    with pytest.raises(FieldError, match="single class"):
        train_ctr(CTRModel(train.fields), ones, None, FAST)


def test_unknown_ctr_model_suggests_a_name():
    with pytest.raises(FieldError, match="did you mean 'deepfm'"):
        CTRSpec("deepfn")


def test_score_logits_orientation():
    labels = np.array([0, 0, 1, 1], dtype=np.float32)
    good = score_logits(np.array([-2.0, -1.0, 1.0, 2.0]), labels)
    bad = score_logits(np.array([2.0, 1.0, -1.0, -2.0]), labels)
    assert good.auc == 1.0 and bad.auc == 0.0 and good.logloss < np.log(2) < bad.logloss
    # Hand-computed: logits 0 → p = 0.5 → logloss ln 2.
    assert np.isclose(score_logits(np.zeros(4), labels).logloss, np.log(2))


def test_ctr_classifier_is_a_sklearn_classifier(synthetic_tables):
    _, train, _, test = synthetic_tables
    from sklearn.metrics import roc_auc_score

    classifier = CTRClassifier("deepfm", categorical=tuple(range(train.n_categorical)), max_epochs=4, lr=3e-3)
    classifier.fit(train.matrix(), train.labels)
    probabilities = classifier.predict_proba(test.matrix())
    assert probabilities.shape == (len(test), 2) and np.allclose(probabilities.sum(1), 1)
    assert roc_auc_score(test.labels, probabilities[:, 1]) > 0.75
    assert set(classifier.predict(test.matrix())) <= {0.0, 1.0}
    with pytest.raises(FieldError, match="binary target"):
        CTRClassifier().fit(train.matrix()[:30], np.arange(30) % 3)
