"""Loaders and forget specs: good input, and one test per bad-input case."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from conftest import require_shared
from erasekit.core.errors import DataError, ForgetSetError
from erasekit.data import ArrayDataset, ForgetSpec, load_csv, load_data, load_mnist
from erasekit.data.loaders import read_idx


def test_digits_split_is_stratified_and_fixed(digits):
    assert digits.input_shape == (1, 8, 8)
    assert (len(digits.train), len(digits.test)) == (1437, 360)
    assert digits.train.x.min() >= 0 and digits.train.x.max() <= 1
    assert set(digits.train_rows).isdisjoint(digits.test_rows)
    assert digits.sha256() == load_data("digits").sha256()


def write_idx(path, array: np.ndarray, magic: int, truncate: int = 0, compress: bool = True):
    header = struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape)
    raw = header + array.astype(np.uint8).tobytes()
    raw = raw[: len(raw) - truncate] if truncate else raw
    path.write_bytes(gzip.compress(raw) if compress else raw)


def make_mnist_dir(tmp_path, n_train=20, n_test=10, truncate_images=0):
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write_idx(
            tmp_path / f"{prefix}-images-idx3-ubyte.gz",
            rng.integers(0, 256, (n, 28, 28)),
            2051,
            truncate=truncate_images if prefix == "train" else 0,
        )
        write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", np.arange(n) % 10, 2049)
    return tmp_path


def test_mnist_loader_reads_idx_files(tmp_path):
    splits = load_mnist(make_mnist_dir(tmp_path))
    assert splits.input_shape == (1, 28, 28)
    assert len(splits.train) == 20 and len(splits.test) == 10
    assert splits.train.x.max() <= 1.0


def test_mnist_truncated_file_is_reported(tmp_path):
    with pytest.raises(DataError, match="truncated"):
        load_mnist(make_mnist_dir(tmp_path, truncate_images=100))


def test_mnist_cut_gzip_stream_is_reported(tmp_path):
    directory = make_mnist_dir(tmp_path)
    path = directory / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(DataError, match="train-images"):
        load_mnist(directory)


def test_idx_with_wrong_magic_is_reported(tmp_path):
    path = tmp_path / "x-idx3-ubyte"
    write_idx(path, np.zeros((2, 3)), 1234, compress=False)
    with pytest.raises(DataError, match="not an IDX"):
        read_idx(path)


def test_mnist_missing_directory(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_mnist(tmp_path / "nope")


def test_real_mnist_matches_published_counts():
    splits = load_mnist(require_shared("mnist"))
    assert np.bincount(splits.train.y.numpy()).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert np.bincount(splits.test.y.numpy()).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def write_csv(path, rows, header="a,b,label"):
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    return path


def test_csv_loader_standardises_and_maps_labels(tmp_path):
    rows = [f"{i},{i * 2 % 7},{'yes' if i % 2 else 'no'}" for i in range(40)]
    splits = load_csv(write_csv(tmp_path / "t.csv", rows), "label")
    assert splits.class_names == ("no", "yes")
    assert splits.input_shape == (2,)
    assert abs(float(splits.train.x.mean())) < 1e-5


@pytest.mark.parametrize(
    "cell, message",
    [("nan", "NaN/inf"), ("inf", "NaN/inf"), ("", "empty cell"), ("abc", "not a number")],
)
def test_csv_bad_cells(tmp_path, cell, message):
    rows = [f"{i},{i},{i % 2}" for i in range(10)] + [f"1,{cell},0"]
    with pytest.raises(DataError, match=message) as info:
        load_csv(write_csv(tmp_path / "t.csv", rows), "label")
    assert "t.csv:12" in str(info.value)


def test_csv_unknown_target_suggests_close_names(tmp_path):
    with pytest.raises(DataError, match="did you mean 'label'"):
        load_csv(write_csv(tmp_path / "t.csv", ["1,2,0", "2,3,1"]), "lable")


def test_csv_single_class_target(tmp_path):
    with pytest.raises(DataError, match="single class"):
        load_csv(write_csv(tmp_path / "t.csv", ["1,2,0", "2,3,0"]), "label")


def test_csv_truncated_row(tmp_path):
    with pytest.raises(DataError, match="truncated"):
        load_csv(write_csv(tmp_path / "t.csv", ["1,2,0", "2,3"]), "label")


def test_csv_unreadable_file(tmp_path):
    with pytest.raises(DataError, match="cannot read"):
        load_csv(tmp_path / "missing.csv", "label")


def test_unknown_data_spec():
    with pytest.raises(DataError, match="unknown data spec"):
        load_data("cifar10")


def test_array_dataset_rejects_nan_and_mismatch():
    with pytest.raises(DataError, match="NaN or inf"):
        ArrayDataset(np.array([[0.0], [np.inf]]), np.array([0, 1]))
    with pytest.raises(DataError, match="disagree"):
        ArrayDataset(np.zeros((3, 2)), np.zeros(2))


LABELS = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])


def test_forget_class_selects_exactly_that_class():
    assert ForgetSpec.classes(1).resolve(LABELS, 3).tolist() == [1, 4, 7]


def test_forget_random_is_seeded_and_sized():
    a = ForgetSpec.random(0.3).resolve(LABELS, 3, seed=1)
    assert len(a) == 3 and np.array_equal(a, ForgetSpec.random(0.3).resolve(LABELS, 3, seed=1))
    assert not np.array_equal(a, ForgetSpec.random(0.3).resolve(LABELS, 3, seed=2))


@pytest.mark.parametrize(
    "spec, message",
    [
        (ForgetSpec.indices([]), "empty"),
        (ForgetSpec.indices([3, 10]), "out of range"),
        (ForgetSpec.indices([-1]), "out of range"),
        (ForgetSpec.indices([2, 2]), "more than once"),
        (ForgetSpec.classes(7), "class 7 does not exist"),
        (ForgetSpec.classes(0, 1, 2), "whole training set"),
        (ForgetSpec.indices(range(10)), "whole training set"),
        (ForgetSpec.random(0.01), "selects none"),
        (ForgetSpec.random(1.5), r"in \(0, 1\)"),
    ],
)
def test_bad_forget_sets(spec, message):
    with pytest.raises(ForgetSetError, match=message):
        spec.resolve(LABELS, 3)


def test_class_without_examples():
    with pytest.raises(ForgetSetError, match="no training examples"):
        ForgetSpec.classes(3).resolve(LABELS, 4)


def test_parse_forms(tmp_path):
    index_file = tmp_path / "ids.txt"
    index_file.write_text("# rows to forget\n1, 2\n5 # last\n")
    assert ForgetSpec.parse("class=3,5") == ForgetSpec.classes(3, 5)
    assert ForgetSpec.parse("random=0.1") == ForgetSpec.random(0.1)
    assert ForgetSpec.parse(f"indices={index_file}").index_list == (1, 2, 5)
    for bad in ("class", "class=x", "random=abc", "forget=1", f"indices={tmp_path / 'none.txt'}"):
        with pytest.raises(ForgetSetError):
            ForgetSpec.parse(bad)
    index_file.write_text("1\nseven\n")
    with pytest.raises(ForgetSetError, match="ids.txt:2"):
        ForgetSpec.parse(f"indices={index_file}")


def test_row_numbers_map_to_training_positions(digits):
    first_train_row = int(digits.train_rows[5])
    assert digits.positions_of_rows(np.array([first_train_row])).tolist() == [5]
    with pytest.raises(ForgetSetError, match="held-out test split"):
        digits.positions_of_rows(np.array([int(digits.test_rows[0])]))
    with pytest.raises(ForgetSetError, match="out of range"):
        digits.positions_of_rows(np.array([10**6]))
