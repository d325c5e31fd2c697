"""Click-through-rate style tables: categorical and numeric *fields*, a binary label.

Readers turn Criteo-format CSV/TSV, libFM/libSVM lines and CSV/Parquet tables into a
pandas frame; :class:`FieldEncoder` turns a frame into integer codes per categorical
field and standardised values per numeric field (:class:`FieldTable`), which the CTR
models in :mod:`erasekit.models.ctr` consume.

Index 0 of every categorical field is reserved: missing values, categories never seen
while fitting, and categories rarer than ``min_count`` all map to it. With
``hash_buckets=B`` a field's values are hashed (stable across runs and machines) into
indices 1..B instead of getting a vocabulary, for high-cardinality fields.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from erasekit.core.errors import DataError, FieldError, suggest
from erasekit.core.provenance import sha256_arrays
from erasekit.data.sources import FIELD_KINDS, DataSpec, grammar
from erasekit.data.tables import read_table

CRITEO_COLUMNS = ("label",) + tuple(f"I{i}" for i in range(1, 14)) + tuple(f"C{i}" for i in range(1, 27))
RESERVED_INDEX = 0


# --------------------------------------------------------------------------- readers


def read_criteo(path: Path) -> pd.DataFrame:
    """Criteo format: ``label,I1..I13,C1..C26`` as CSV with that header, or the original headerless TSV.

    Empty cells are missing. A line with the wrong number of fields or a label other than
    0/1 raises :class:`DataError` naming the line number.
    """
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {path}: {exc}") from None
    if not lines:
        raise DataError(f"{path} is empty")
    first = lines[0]
    separator = "\t" if "\t" in first else ","
    header = first.split(separator)
    start = 1 if header[0].strip().lower() == "label" else 0
    if start and tuple(h.strip() for h in header) != CRITEO_COLUMNS:
        raise DataError(f"{path}: header must be label,I1..I13,C1..C26 (got {len(header)} columns)")
    rows = []
    for number, line in enumerate(lines[start:], start=start + 1):
        if not line.strip():
            continue
        cells = line.split(separator)
        if len(cells) != len(CRITEO_COLUMNS):
            raise DataError(
                f"{path}:{number}: expected {len(CRITEO_COLUMNS)} fields (label, 13 numeric, 26 categorical), got {len(cells)}"
            )
        if cells[0].strip() not in ("0", "1"):
            raise DataError(f"{path}:{number}: label must be 0 or 1, got '{cells[0]}'")
        numeric = []
        for column, cell in zip(CRITEO_COLUMNS[1:14], cells[1:14]):
            cell = cell.strip()
            try:
                numeric.append(float(cell) if cell else np.nan)
            except ValueError:
                raise DataError(f"{path}:{number}: numeric field {column} is not a number: '{cell}'") from None
        rows.append([int(cells[0])] + numeric + [c.strip() or None for c in cells[14:]])
    if not rows:
        raise DataError(f"{path} has no data rows")
    frame = pd.DataFrame(rows, columns=list(CRITEO_COLUMNS))
    for column in CRITEO_COLUMNS[14:]:
        frame[column] = frame[column].astype(object)
    return frame


def read_libsvm(path: Path) -> pd.DataFrame:
    """libSVM (``label idx:value …``) or libFFM / field-aware libFM (``label field:idx:value …``) lines.

    libSVM features become numeric columns ``f<idx>`` (absent = 0). libFFM features become
    one categorical column ``field<k>`` per field holding the feature index (absent = missing).
    Labels may be 0/1 or -1/+1 (mapped to 0/1). Malformed lines raise :class:`DataError`
    with the line number.
    """
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {path}: {exc}") from None
    labels: list[int] = []
    records: list[dict[str, object]] = []
    field_aware: bool | None = None
    for number, line in enumerate(lines, start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        parts = text.split()
        try:
            label = float(parts[0])
        except ValueError:
            raise DataError(f"{path}:{number}: the first token must be the label, got '{parts[0]}'") from None
        if label not in (0.0, 1.0, -1.0):
            raise DataError(f"{path}:{number}: label must be 0/1 or -1/+1, got '{parts[0]}'")
        record: dict[str, object] = {}
        for token in parts[1:]:
            pieces = token.split(":")
            aware = len(pieces) == 3
            if len(pieces) not in (2, 3) or (field_aware is not None and aware != field_aware):
                raise DataError(
                    f"{path}:{number}: bad feature '{token}'; expected idx:value (libSVM) or field:idx:value (libFFM), consistently"
                )
            field_aware = aware
            try:
                if aware:
                    field, index, value = int(pieces[0]), int(pieces[1]), float(pieces[2])
                    if value != 0:
                        record[f"field{field}"] = str(index)
                else:
                    record[f"f{int(pieces[0])}"] = float(pieces[1])
            except ValueError:
                raise DataError(f"{path}:{number}: bad feature '{token}'; indices must be integers and values numbers") from None
        labels.append(1 if label == 1.0 else 0)
        records.append(record)
    if not records:
        raise DataError(f"{path} has no data lines")
    frame = pd.DataFrame.from_records(records)
    frame = frame.reindex(columns=sorted(frame.columns, key=lambda c: int(c.removeprefix("field").removeprefix("f"))))
    if not field_aware:
        frame = frame.fillna(0.0)
    else:
        frame = frame.astype(object).where(frame.notna(), None)
    frame.insert(0, "label", labels)
    return frame


@dataclass(frozen=True)
class LoadedTable:
    """A frame named on the command line, its default target, an official test split and known relevant fields if any."""

    frame: pd.DataFrame
    target: str | None
    description: str
    test_frame: pd.DataFrame | None = None
    relevant: tuple[str, ...] | None = None


TABLE_SOURCES = grammar(FIELD_KINDS)


def load_field_data(spec: str, categorical: Sequence[str] = (), seed: int = 0) -> LoadedTable:
    """Resolve ``spec`` (one of :data:`TABLE_SOURCES`) to a frame."""
    source = DataSpec.parse(spec, FIELD_KINDS)
    if source.kind == "synthetic":
        try:
            rows = int(source.argument) if source.argument else 20000
        except ValueError:
            raise DataError(f"synthetic:ROWS needs an integer number of rows, got '{source.argument}'") from None
        if rows < 100:
            raise DataError(f"synthetic data needs at least 100 rows, got {rows}")
        synthetic = make_synthetic_ctr(n_rows=rows, seed=seed)
        return LoadedTable(
            synthetic.frame, synthetic.target, f"synthetic CTR ({rows} rows, seed {seed})", None, synthetic.relevant
        )
    path = source.path
    if source.kind == "adult":
        from erasekit.data.tables import load_adult

        train, test = load_adult(path)
        return LoadedTable(train, "income", f"UCI Adult ({path})", test)
    if not path.is_file():
        raise DataError(f"{path} does not exist or is not a file")
    if source.kind in ("csv", "parquet"):
        return LoadedTable(read_table(path, categorical), None, f"{source.kind} {path}")
    if source.kind == "criteo":
        return LoadedTable(read_criteo(path), "label", f"Criteo format {path}")
    return LoadedTable(read_libsvm(path), "label", f"libSVM/libFFM {path}")


# --------------------------------------------------------------------------- encoding


@dataclass(frozen=True)
class Field:
    """One input field. ``vocab_size`` counts the reserved index 0 (categorical only)."""

    name: str
    kind: str  # "categorical" | "numeric"
    vocab_size: int = 0


@dataclass(frozen=True)
class FieldTable:
    """Encoded rows: ``codes`` [n, n_categorical] int64, ``numeric`` [n, n_numeric] float32, ``labels`` [n] float32 in {0, 1}.

    ``fields`` lists categorical fields first, then numeric ones, matching the column
    order of ``codes`` then ``numeric``.
    """

    fields: tuple[Field, ...]
    codes: np.ndarray
    numeric: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.fields]

    @property
    def n_categorical(self) -> int:
        return self.codes.shape[1]

    def rows(self, index: np.ndarray) -> FieldTable:
        return FieldTable(self.fields, self.codes[index], self.numeric[index], self.labels[index])

    def select(self, names: Sequence[str]) -> FieldTable:
        """The same rows with only the fields ``names`` (in table order)."""
        unknown = [n for n in names if n not in self.names]
        if unknown:
            raise FieldError(f"unknown field(s) {unknown}{suggest(unknown[0], self.names)}")
        wanted = set(names)
        cat = [i for i, f in enumerate(self.fields[: self.n_categorical]) if f.name in wanted]
        num = [i for i, f in enumerate(self.fields[self.n_categorical :]) if f.name in wanted]
        fields = tuple(self.fields[i] for i in cat) + tuple(self.fields[self.n_categorical + i] for i in num)
        return FieldTable(fields, self.codes[:, cat], self.numeric[:, num], self.labels)

    def one_hot(self) -> tuple[np.ndarray, np.ndarray]:
        """(matrix, owning field of each column): categorical one-hot without the reserved index 0, numeric as is."""
        blocks, owner = [], []
        for j, f in enumerate(self.fields[: self.n_categorical]):
            levels = np.arange(1, f.vocab_size)
            blocks.append((self.codes[:, j : j + 1] == levels).astype(np.float32))
            owner += [j] * len(levels)
        blocks.append(self.numeric)
        owner += list(range(self.n_categorical, len(self.fields)))
        return np.hstack(blocks), np.asarray(owner, dtype=np.int64)

    def matrix(self) -> np.ndarray:
        """One column per field (codes as floats, then numeric), e.g. for :class:`~erasekit.models.ctr.CTRClassifier`."""
        return np.hstack([self.codes.astype(np.float64), self.numeric.astype(np.float64)])


def table_from_matrix(
    X: np.ndarray, labels: np.ndarray | None, categorical: Sequence[int], vocab_sizes: np.ndarray | None = None
) -> FieldTable:
    """A :class:`FieldTable` from a numeric matrix whose ``categorical`` columns hold integer codes.

    Fields are named ``x<column>``, categorical first (as every FieldTable orders them). Codes
    outside ``1..vocab_size-1`` (negative, or unseen when ``vocab_sizes`` is given) map to the
    reserved index 0. ``vocab_sizes`` defaults to one more than the largest code seen.
    """
    X = np.asarray(X, dtype=np.float64)
    cat = [int(j) for j in categorical]
    num = [j for j in range(X.shape[1]) if j not in set(cat)]
    codes = X[:, cat].astype(np.int64) if cat else np.zeros((len(X), 0), dtype=np.int64)
    if vocab_sizes is None:
        vocab_sizes = np.maximum(codes.max(axis=0) + 1, 1) if cat else np.zeros(0, dtype=np.int64)
    if cat:
        codes = np.where((codes < 0) | (codes >= vocab_sizes), 0, codes)
    fields = tuple(
        [Field(f"x{j}", "categorical", int(v)) for j, v in zip(cat, vocab_sizes)] + [Field(f"x{j}", "numeric") for j in num]
    )
    values = np.zeros(len(X), np.float32) if labels is None else np.asarray(labels, dtype=np.float32)
    return FieldTable(fields, codes, X[:, num].astype(np.float32), values)


def binary_labels(values: pd.Series | np.ndarray, what: str = "target") -> np.ndarray:
    """Map a two-valued label column to {0, 1} (sorted order: the larger / later value is 1)."""
    series = pd.Series(values)
    return (series.to_numpy() == positive_label(series, what)).astype(np.float32)


def positive_label(values: pd.Series | np.ndarray, what: str = "target"):
    """The value that :func:`binary_labels` maps to 1; errors for missing, one-class or non-binary labels."""
    series = pd.Series(values)
    if series.isna().any():
        raise FieldError(f"{what} has {int(series.isna().sum())} missing values; drop those rows first")
    levels = sorted(series.unique(), key=str) if series.dtype == object else sorted(series.unique())
    if len(levels) == 1:
        raise FieldError(f"{what} has a single class ({levels[0]!r}); a click/label model needs both classes")
    if len(levels) != 2:
        raise FieldError(f"{what} must be binary for CTR models, found {len(levels)} distinct values; map it to 0/1 first")
    return levels[1]


def _hash_codes(values: np.ndarray, buckets: int) -> np.ndarray:
    hashed = pd.util.hash_array(values.astype(str).astype(object), categorize=True)
    return (hashed % np.uint64(buckets)).astype(np.int64) + 1


class FieldEncoder:
    """Learn per-field encodings on a training frame; apply them to any frame with the same columns.

    Categorical: index 1..V by descending frequency (ties by value), or hashing into
    ``hash_buckets``; 0 for missing / unseen / rarer than ``min_count``. Numeric:
    ``sign(x)·log1p(|x|)`` when ``log_numeric`` (heavy-tailed counts such as Criteo's),
    then standardised with the training mean/std; missing → 0 (the mean). A column that is
    missing in every training row is an error (it carries nothing; drop it).
    """

    def __init__(
        self,
        categorical: Sequence[str] | None = None,
        hash_buckets: int | None = None,
        min_count: int = 1,
        log_numeric: bool = False,
    ):
        if hash_buckets is not None and hash_buckets < 1:
            raise FieldError(f"hash_buckets must be ≥ 1, got {hash_buckets}")
        self.categorical = categorical
        self.hash_buckets = hash_buckets
        self.min_count = min_count
        self.log_numeric = log_numeric

    def fit(self, frame: pd.DataFrame) -> FieldEncoder:
        if frame.shape[1] == 0 or len(frame) == 0:
            raise FieldError("the table has no feature columns or no rows")
        declared = set(self.categorical or ())
        for name in declared:
            if name not in frame.columns:
                raise FieldError(f"categorical column '{name}' is not in the table{suggest(name, map(str, frame.columns))}")
        self.columns_ = [str(c) for c in frame.columns]
        for column in self.columns_:
            if frame[column].isna().all():
                raise FieldError(f"column '{column}' is missing in every row; drop it (it carries no information)")
        self.categorical_ = [
            c
            for c in self.columns_
            if c in declared or not pd.api.types.is_numeric_dtype(frame[c]) or pd.api.types.is_bool_dtype(frame[c])
        ]
        self.numeric_ = [c for c in self.columns_ if c not in self.categorical_]
        self.vocab_: dict[str, dict[str, int]] = {}
        for column in self.categorical_:
            if self.hash_buckets is not None:
                continue
            counts = frame[column].dropna().astype(str).value_counts()
            counts = counts[counts >= self.min_count]
            ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
            self.vocab_[column] = {value: i + 1 for i, (value, _) in enumerate(ordered)}
        numeric = self._numeric_values(frame)
        self.mean_ = np.nanmean(numeric, axis=0) if self.numeric_ else np.zeros(0)
        std = np.nanstd(numeric, axis=0) if self.numeric_ else np.zeros(0)
        self.std_ = np.where(std > 0, std, 1.0)
        self.fields_ = tuple(
            [Field(c, "categorical", (self.hash_buckets or len(self.vocab_[c])) + 1) for c in self.categorical_]
            + [Field(c, "numeric") for c in self.numeric_]
        )
        return self

    def _numeric_values(self, frame: pd.DataFrame) -> np.ndarray:
        if not self.numeric_:
            return np.zeros((len(frame), 0))
        try:
            values = frame[self.numeric_].to_numpy(dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise FieldError(f"numeric columns hold non-numbers ({exc}); declare them categorical") from None
        values = np.where(np.isfinite(values), values, np.nan)
        return np.sign(values) * np.log1p(np.abs(values)) if self.log_numeric else values

    def transform(self, frame: pd.DataFrame, labels: np.ndarray | None = None) -> FieldTable:
        if not hasattr(self, "fields_"):
            raise FieldError("FieldEncoder is not fitted; call fit on the training frame first")
        missing = [c for c in self.columns_ if c not in frame.columns]
        extra = [str(c) for c in frame.columns if str(c) not in self.columns_]
        if missing or extra:
            raise FieldError(
                f"columns differ from those seen in fit: missing {missing or 'none'}, unexpected {extra or 'none'}; "
                "pass the same feature columns as when fitting"
            )
        codes = np.zeros((len(frame), len(self.categorical_)), dtype=np.int64)
        for j, column in enumerate(self.categorical_):
            values = frame[column]
            present = values.notna().to_numpy()
            strings = values[present].astype(str).to_numpy()
            if self.hash_buckets is not None:
                codes[present, j] = _hash_codes(strings, self.hash_buckets)
            else:
                codes[present, j] = pd.Series(strings).map(self.vocab_[column]).fillna(RESERVED_INDEX).to_numpy(np.int64)
        numeric = (self._numeric_values(frame) - self.mean_) / self.std_
        numeric = np.nan_to_num(numeric, nan=0.0).astype(np.float32)
        if labels is None:
            labels = np.zeros(len(frame), dtype=np.float32)
        return FieldTable(self.fields_, codes, numeric, np.asarray(labels, dtype=np.float32))


@dataclass(frozen=True)
class PreparedTable:
    """A frame split into train / validation / test and encoded with one :class:`FieldEncoder` fitted on train."""

    train: FieldTable
    valid: FieldTable
    test: FieldTable
    target: str
    positive_label: str
    data_sha256: str


def prepare_table(
    frame: pd.DataFrame,
    target: str,
    categorical: Sequence[str] = (),
    test_frame: pd.DataFrame | None = None,
    valid_fraction: float = 0.15,
    test_fraction: float = 0.2,
    hash_buckets: int | None = None,
    log_numeric: bool = False,
    seed: int = 0,
) -> PreparedTable:
    """Split ``frame`` (stratified by the binary ``target``) and encode its fields.

    With ``test_frame`` the test rows come from it (e.g. Adult's official test file);
    otherwise ``test_fraction`` of ``frame`` is held out. Raises :class:`FieldError` for a
    missing or non-binary target, a one-class target, or fewer than two rows per split.
    """
    from sklearn.model_selection import train_test_split

    if target not in frame.columns:
        raise FieldError(f"target column '{target}' is not in the table{suggest(target, map(str, frame.columns))}")
    positive = positive_label(frame[target], f"target '{target}'")
    labels = (frame[target].to_numpy() == positive).astype(np.float32)
    features = frame.drop(columns=[target])
    if features.shape[1] == 0:
        raise FieldError("the table has no feature columns besides the target")
    rows = np.arange(len(frame))
    try:
        if test_frame is None:
            rows, test_rows = train_test_split(rows, test_size=test_fraction, stratify=labels, random_state=seed)
        train_rows, valid_rows = train_test_split(rows, test_size=valid_fraction, stratify=labels[rows], random_state=seed)
    except ValueError as exc:
        raise FieldError(f"cannot split {len(frame)} rows into train/validation/test: {exc}; use a larger table") from None
    encoder = FieldEncoder(categorical, hash_buckets=hash_buckets, log_numeric=log_numeric).fit(features.iloc[train_rows])
    if test_frame is None:
        test = encoder.transform(features.iloc[test_rows], labels[test_rows])
    else:
        if target not in test_frame.columns:
            raise FieldError(f"target column '{target}' is not in the test table")
        test_labels = (test_frame[target].to_numpy() == positive).astype(np.float32)
        test = encoder.transform(test_frame.drop(columns=[target]), test_labels)
    digest = sha256_arrays(pd.util.hash_pandas_object(frame, index=False).to_numpy())
    return PreparedTable(
        encoder.transform(features.iloc[train_rows], labels[train_rows]),
        encoder.transform(features.iloc[valid_rows], labels[valid_rows]),
        test,
        target,
        str(positive),
        digest,
    )


# --------------------------------------------------------------------------- synthetic data with ground truth


@dataclass(frozen=True)
class SyntheticCTR:
    """A seeded CTR table whose relevant fields are known.

    ``relevant``: fields that drive the click probability. ``proxies``: noisy copies of
    relevant fields (a relabelled value, replaced at random with probability ``proxy_noise``).
    ``irrelevant``: independent noise fields.
    """

    frame: pd.DataFrame
    target: str
    relevant: tuple[str, ...]
    proxies: tuple[str, ...]
    irrelevant: tuple[str, ...]


def make_synthetic_ctr(
    n_rows: int = 20000,
    n_relevant: int = 6,
    n_proxies: int = 3,
    n_irrelevant: int = 9,
    n_numeric_relevant: int = 2,
    cardinality: int = 20,
    proxy_noise: float = 0.2,
    seed: int = 0,
) -> SyntheticCTR:
    """Generate clicks from additive per-value effects plus one pairwise interaction.

    The first ``n_numeric_relevant`` relevant fields are numeric (linear effect), the rest
    categorical. Proxies copy the first ``n_proxies`` categorical relevant fields. Columns
    are shuffled so position carries no hint.
    """
    if n_relevant < 2 or n_numeric_relevant >= n_relevant or n_proxies > n_relevant - n_numeric_relevant:
        raise FieldError(
            "need ≥ 2 relevant fields, fewer numeric than relevant, and no more proxies than categorical relevant fields"
        )
    rng = np.random.default_rng(seed)
    columns: dict[str, np.ndarray] = {}
    logit = np.full(n_rows, -1.0)
    relevant, proxies, irrelevant = [], [], []
    categorical_relevant = []
    for i in range(n_relevant):
        name = f"r{i}"
        if i < n_numeric_relevant:
            values = rng.normal(size=n_rows)
            logit += 0.8 * values
            columns[name] = values
        else:
            codes = rng.zipf(1.6, size=n_rows) % cardinality
            effects = rng.normal(scale=1.0, size=cardinality)
            logit += effects[codes]
            columns[name] = np.array([f"v{v}" for v in codes], dtype=object)
            categorical_relevant.append(codes)
        relevant.append(name)
    if len(categorical_relevant) >= 2:
        a, b = categorical_relevant[0], categorical_relevant[1]
        logit += 0.8 * ((a % 2 == 0) & (b % 2 == 0))
    for i in range(n_proxies):
        source = categorical_relevant[i]
        relabel = rng.permutation(cardinality)
        copied = relabel[source]
        noisy = rng.random(n_rows) < proxy_noise
        copied[noisy] = rng.integers(0, cardinality, size=int(noisy.sum()))
        name = f"p{i}"
        columns[name] = np.array([f"w{v}" for v in copied], dtype=object)
        proxies.append(name)
    for i in range(n_irrelevant):
        name = f"n{i}"
        if i % 3 == 0:
            columns[name] = rng.normal(size=n_rows)
        else:
            columns[name] = np.array([f"u{v}" for v in rng.integers(0, cardinality, size=n_rows)], dtype=object)
        irrelevant.append(name)
    order = rng.permutation(list(columns))
    frame = pd.DataFrame({name: columns[name] for name in order})
    frame["click"] = (rng.random(n_rows) < 1 / (1 + np.exp(-logit))).astype(int)
    return SyntheticCTR(frame, "click", tuple(relevant), tuple(proxies), tuple(irrelevant))
