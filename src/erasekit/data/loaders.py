"""Classification data for training and unlearning: ``digits``, ``mnist:DIR``, ``csv:PATH``, ``parquet:PATH``."""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from pathlib import Path

import numpy as np

from erasekit.core.errors import DataError, suggest
from erasekit.data.dataset import DataSplits
from erasekit.data.plain_tables import MAX_CLASSES_INFERRED
from erasekit.data.sources import CLASSIFICATION_KINDS, DataSpec
from erasekit.data.tables import read_table

TEST_FRACTION = 0.2
SPLIT_SEED = 0  # the split belongs to the data, not to the experiment seed


def load_data(spec: str, target: str | None = None) -> DataSplits:
    """Load ``digits``, ``mnist:DIR``, ``csv:PATH`` or ``parquet:PATH`` (``target`` names a table's label column)."""
    source = DataSpec.parse(spec, CLASSIFICATION_KINDS)
    if source.kind == "digits":
        return load_digits()
    if source.kind == "mnist":
        return load_mnist(source.path)
    if not target:
        raise DataError(f"{source.kind} data needs --target COLUMN naming the label column")
    return load_csv(source.path, target)


def _stratified_split(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    rows = np.arange(len(labels))
    counts = np.bincount(labels)
    stratify = labels if counts[counts > 0].min() >= 2 else None
    train_rows, test_rows = train_test_split(rows, test_size=TEST_FRACTION, random_state=SPLIT_SEED, stratify=stratify)
    return np.sort(train_rows), np.sort(test_rows)


def load_digits() -> DataSplits:
    """scikit-learn's bundled 8×8 digits (1,797 images), pixels scaled to [0, 1], 80/20 split."""
    from sklearn.datasets import load_digits as sk_digits

    bunch = sk_digits()
    x = (bunch.data / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    y = bunch.target.astype(np.int64)
    train_rows, test_rows = _stratified_split(y)
    splits = DataSplits.from_arrays("digits", x[train_rows], y[train_rows], x[test_rows], y[test_rows])
    return DataSplits(
        name="digits",
        train=splits.train,
        test=splits.test,
        train_rows=train_rows,
        test_rows=test_rows,
        class_names=tuple(str(c) for c in range(10)),
        preprocessing="pixels/16; stratified 80/20 split (seed 0)",
    )


_IDX_MAGIC = {2049: 1, 2051: 3}  # labels: 1 dim, images: 3 dims


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (gzip or plain) of unsigned bytes, checking its header and length."""
    candidates = [path, path.with_name(path.name + ".gz")] if path.suffix != ".gz" else [path, path.with_suffix("")]
    found = next((p for p in candidates if p.is_file()), None)
    if found is None:
        raise DataError(f"cannot find {path} (looked for {' and '.join(str(p) for p in candidates)})")
    try:
        raw = gzip.decompress(found.read_bytes()) if found.suffix == ".gz" else found.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"cannot read {found}: {exc} (truncated or not gzip?) — re-copy the file") from None
    if len(raw) < 8:
        raise DataError(f"{found} is truncated: {len(raw)} bytes, shorter than an IDX header")
    magic = struct.unpack(">I", raw[:4])[0]
    if magic not in _IDX_MAGIC:
        raise DataError(f"{found} is not an IDX ubyte file (magic number {magic}); expected MNIST IDX files")
    ndim = _IDX_MAGIC[magic]
    header = 4 + 4 * ndim
    dims = struct.unpack(">" + "I" * ndim, raw[4:header])
    expected = header + math.prod(dims)
    if len(raw) != expected:
        raise DataError(f"{found} is truncated or corrupt: {len(raw)} bytes, header says {expected}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def load_mnist(directory: Path | str) -> DataSplits:
    """MNIST from the four IDX files in ``directory`` (the official 60k/10k train/test split)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(f"MNIST directory {directory} does not exist")
    parts = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images = read_idx(directory / f"{prefix}-images-idx3-ubyte.gz")
        labels = read_idx(directory / f"{prefix}-labels-idx1-ubyte.gz")
        if len(images) != len(labels):
            raise DataError(f"MNIST {split}: {len(images)} images but {len(labels)} labels")
        parts[split] = ((images.astype(np.float32) / 255.0)[:, None], labels.astype(np.int64))
    splits = DataSplits.from_arrays("mnist", *parts["train"], *parts["test"])
    return DataSplits(
        name="mnist",
        train=splits.train,
        test=splits.test,
        train_rows=np.arange(len(splits.train)),
        test_rows=np.arange(len(splits.train), len(splits.train) + len(splits.test)),
        class_names=tuple(str(c) for c in range(10)),
        preprocessing="pixels/255; official train/test files",
    )


def load_csv(path: Path, target: str) -> DataSplits:
    """A numeric table (CSV with a header row, or Parquet); ``target`` holds the class labels.

    Feature columns must all be numeric with no empty cells; they are standardised with the
    training split's mean and standard deviation. Labels may be numbers or strings and are
    mapped to 0..C-1 in sorted order. Row numbers (0-based, header excluded) identify examples.
    """
    path = Path(path)
    frame = read_table(path, as_text=True)
    header = list(frame.columns)
    if target not in header:
        raise DataError(f"target column '{target}' is not in {path}{suggest(target, header)}; columns: {', '.join(header)}")
    features = [c for c in header if c != target]
    if not features:
        raise DataError(f"{path} has no feature columns besides '{target}'")
    cells = frame[features].to_numpy(dtype=object)
    x = np.empty(cells.shape, dtype=np.float64)
    for r, row in enumerate(cells):
        for j, text in enumerate(row):
            cell = str(text).strip()
            try:
                value = float(cell)
            except ValueError:
                what = "an empty cell (a missing value, or a truncated row)" if not cell else f"'{cell}' is not a number"
                raise DataError(
                    f"{path}:{r + 2}: column '{features[j]}' has {what}; only numeric features are supported"
                ) from None
            if not math.isfinite(value):
                raise DataError(f"{path}:{r + 2}: column '{features[j]}' is {cell}; remove or impute NaN/inf values")
            x[r, j] = value
    raw_labels = [str(v).strip() for v in frame[target]]
    empty = next((r for r, v in enumerate(raw_labels) if not v), None)
    if empty is not None:
        raise DataError(f"{path}:{empty + 2}: the target '{target}' has an empty cell (a missing label, or a truncated row)")
    classes = sorted(set(raw_labels), key=_label_sort_key)
    if len(classes) < 2:
        raise DataError(f"target '{target}' has a single class ('{classes[0]}'); classification needs at least two")
    counts = {c: 0 for c in classes}
    for label in raw_labels:
        counts[label] += 1
    if len(classes) > MAX_CLASSES_INFERRED and len(classes) > len(raw_labels) // 2:  # a quantity, not classes
        raise DataError(
            f"target '{target}' has {len(classes)} distinct values in {len(raw_labels)} rows: it looks like a quantity, "
            "not class labels; unlearning here needs a classification target"
        )
    lonely = [c for c in classes if counts[c] < 2]
    if lonely:
        raise DataError(
            f"class '{lonely[0]}' of target '{target}' has a single row; every class needs at least two "
            "(one to train on, one to test) — drop or merge it"
        )
    index = {c: i for i, c in enumerate(classes)}
    y = np.array([index[v] for v in raw_labels], dtype=np.int64)
    train_rows, test_rows = _stratified_split(y)
    mean = x[train_rows].mean(axis=0)
    std = x[train_rows].std(axis=0)
    std[std == 0] = 1.0
    x = ((x - mean) / std).astype(np.float32)
    splits = DataSplits.from_arrays(path.name, x[train_rows], y[train_rows], x[test_rows], y[test_rows], classes)
    return DataSplits(
        name=f"{'parquet' if path.suffix.lower() in ('.parquet', '.pq') else 'csv'}:{path.name}",
        train=splits.train,
        test=splits.test,
        train_rows=train_rows,
        test_rows=test_rows,
        class_names=tuple(classes),
        preprocessing="features standardised with train mean/std; stratified 80/20 split (seed 0)",
    )


def _label_sort_key(value: str):
    try:
        return (0, float(value), value)
    except ValueError:
        return (1, 0.0, value)
