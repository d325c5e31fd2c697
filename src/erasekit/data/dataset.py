"""Datasets and batching used by training, unlearning and the audit.

Everywhere erasekit takes training data it accepts an :class:`ArrayDataset`, any map-style
``torch.utils.data.Dataset`` whose items are ``(inputs, label)`` pairs or dicts, a ``DataLoader``
(its dataset and ``collate_fn`` are reused; its shuffling is not, because forget requests name
positions), or any other iterable of batches (read once into memory). :func:`as_dataset` does
the conversion; inputs may be a tensor or a dict of tensors (passed to the model as keyword
arguments), and integer inputs such as token ids stay integers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence, Sized
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, Subset
from torch.utils.data import default_collate as _default_collate

from erasekit.core.errors import DataError, ForgetSetError
from erasekit.core.provenance import sha256_arrays

# the names Hugging Face datasets and common loaders give the label of a dict example
LABEL_KEYS = ("labels", "label", "y", "target", "targets")


class ArrayDataset(Dataset):
    """Inputs ``x`` (shape ``[N, *input_shape]``) and integer labels ``y`` (``[N]``).

    Floating inputs are stored as float32; integer inputs (token ids for an embedding model)
    stay int64. Batches are sliced straight from the tensors, which is much faster than
    per-item collation.
    """

    def __init__(self, x, y):
        x = torch.as_tensor(np.asarray(x) if not torch.is_tensor(x) else x)
        x = x.to(torch.int64) if not (x.is_floating_point() or x.dtype == torch.bool) else x.to(torch.float32)
        y = torch.as_tensor(np.asarray(y) if not torch.is_tensor(y) else y, dtype=torch.int64)
        if x.ndim < 1 or y.ndim != 1 or len(x) != len(y):
            raise DataError(
                f"inputs and labels disagree: x has shape {tuple(x.shape)}, y has shape "
                f"{tuple(y.shape)}; pass one label per example"
            )
        if x.is_floating_point() and not torch.isfinite(x).all():
            bad = int((~torch.isfinite(x.reshape(len(x), -1))).any(dim=1).nonzero()[0, 0])
            raise DataError(f"inputs contain NaN or inf (first at example {bad}); clean or impute them first")
        self.x = x
        self.y = y

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, index):
        return self.x[index], self.y[index]

    def subset(self, indices) -> ArrayDataset:
        index = torch.as_tensor(np.asarray(indices, dtype=np.int64))
        return ArrayDataset(self.x[index], self.y[index])

    def sha256(self) -> str:
        return sha256_arrays(self.x.numpy(), self.y.numpy())


class UserDataset(Dataset):
    """A user's map-style dataset seen as ``(inputs, label)`` examples.

    ``source[i]`` may be an ``(inputs, label)`` pair or a dict; for dicts, ``label_key`` names
    the label (default: the first of ``labels``, ``label``, ``y``, ``target``, ``targets``) and
    ``input_keys`` the model's keyword inputs (default: every other key). ``collate_fn`` turns a
    list of raw items into a batch (e.g. a tokenizer's padding collator), as in a ``DataLoader``.
    """

    def __init__(
        self,
        source: Dataset,
        label_key: str | None = None,
        input_keys: Sequence[str] | None = None,
        collate_fn: Callable[[list], Any] | None = None,
    ) -> None:
        if not hasattr(source, "__getitem__") or not hasattr(source, "__len__"):
            raise DataError(
                f"{type(source).__name__} is not a map-style dataset (needs __getitem__ and __len__); use as_dataset()"
            )
        self.source = source
        self.label_key = label_key
        self.input_keys = tuple(input_keys) if input_keys is not None else None
        self.collate_fn = collate_fn or _default_collate
        if len(cast(Sized, source)) and isinstance(source[0], Mapping):
            self.label_key = self._resolve_label_key(source[0])

    def _resolve_label_key(self, item: Mapping) -> str:
        if self.label_key is not None:
            if self.label_key not in item:
                raise DataError(
                    f"label key '{self.label_key}' is not in the dataset's examples (keys: {', '.join(map(str, item))})"
                )
            return self.label_key
        for key in LABEL_KEYS:
            if key in item:
                return key
        raise DataError(f"no label in the dataset's examples (keys: {', '.join(map(str, item))}); pass label_key='…'")

    def __len__(self) -> int:
        return len(cast(Sized, self.source))

    def split(self, item: Any) -> tuple[Any, Any]:
        """``(inputs, label)`` of one raw item or one collated batch."""
        if isinstance(item, Mapping):
            label_key = cast(str, self.label_key)
            keys = self.input_keys or tuple(k for k in item if k != label_key)
            missing = [k for k in keys if k not in item]
            if missing:
                raise DataError(f"input key(s) {missing} are not in the dataset's examples (keys: {', '.join(map(str, item))})")
            return {k: item[k] for k in keys}, item[label_key]
        if isinstance(item, (tuple, list)) and len(item) >= 2:
            return item[0], item[1]
        raise DataError(
            f"a dataset example is a {type(item).__name__}; erasekit needs (inputs, label) pairs or dicts with a label key"
        )

    def __getitem__(self, index):
        return self.split(self.source[index])

    def subset(self, indices) -> UserDataset:
        return UserDataset(
            Subset(self.source, np.asarray(indices, dtype=np.int64).tolist()), self.label_key, self.input_keys, self.collate_fn
        )

    def label(self, index: int) -> int:
        return int(torch.as_tensor(self[index][1]))


class _Examples(Dataset):
    """Examples read once from an iterable of batches, kept in memory."""

    def __init__(self, examples: list) -> None:
        self.examples = examples

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index):
        return self.examples[index]


def as_dataset(
    data: Dataset | DataLoader | Iterable,
    label_key: str | None = None,
    input_keys: Sequence[str] | None = None,
) -> Dataset:
    """``data`` as a dataset erasekit can index and batch (see the module docstring)."""
    if isinstance(data, (ArrayDataset, UserDataset)):
        return data
    if isinstance(data, DataLoader):
        if not isinstance(data.dataset, IterableDataset):
            return UserDataset(data.dataset, label_key, input_keys, data.collate_fn)
        return _read_batches(data, label_key, input_keys)
    if (
        isinstance(data, Dataset)
        and hasattr(data, "__getitem__")
        and hasattr(data, "__len__")
        and not isinstance(data, IterableDataset)
    ):
        return UserDataset(data, label_key, input_keys)
    if isinstance(data, (str, bytes)) or not isinstance(data, Iterable):
        raise DataError(f"training data must be a Dataset, a DataLoader or an iterable of batches, got {type(data).__name__}")
    if isinstance(data, Sequence) and len(data) and _is_example(data[0], label_key):
        return UserDataset(cast(Dataset, data), label_key, input_keys)  # a list of examples is a map-style dataset
    return _read_batches(data, label_key, input_keys)


def _is_example(item: Any, label_key: str | None) -> bool:
    """True when ``item`` is one example (a scalar label), False when it is a batch (a vector of labels)."""
    if isinstance(item, Mapping):
        key = label_key or next((k for k in LABEL_KEYS if k in item), None)
        return key is not None and key in item and np.ndim(item[key]) == 0
    return isinstance(item, (tuple, list)) and len(item) >= 2 and np.ndim(item[1]) == 0


def _read_batches(batches_: Iterable, label_key: str | None, input_keys: Sequence[str] | None) -> UserDataset:
    """Unbatch an iterable of ``(inputs, labels)`` or dict batches into in-memory examples."""
    examples: list = []
    shapes: dict[str, tuple] = {}
    for batch in batches_:
        if isinstance(batch, Mapping):
            size = len(next(iter(batch.values())))
            for i in range(size):
                examples.append({k: v[i] for k, v in batch.items()})
            for k, v in batch.items():
                if torch.is_tensor(v) and v.ndim > 1 and shapes.setdefault(k, tuple(v.shape[1:])) != tuple(v.shape[1:]):
                    raise DataError(
                        f"batches have different '{k}' shapes ({shapes[k]} and {tuple(v.shape[1:])}); pass the DataLoader "
                        "itself (its dataset and collate_fn are reused) or pad every batch to one length"
                    )
        elif isinstance(batch, (tuple, list)) and len(batch) >= 2:
            x, y = batch[0], batch[1]
            examples.extend((x[i], y[i]) for i in range(len(y)))
        else:
            raise DataError(
                f"a batch is a {type(batch).__name__}; erasekit needs (inputs, labels) pairs or dicts with a label key"
            )
    if not examples:
        raise DataError("the iterable of batches yielded no examples")
    return UserDataset(_Examples(examples), label_key, input_keys)


def labels_of(dataset: Dataset) -> np.ndarray:
    """Integer labels of every example, without materialising inputs when avoidable."""
    if isinstance(dataset, ArrayDataset):
        return dataset.y.numpy()
    if isinstance(dataset, Subset):
        return labels_of(dataset.dataset)[np.asarray(dataset.indices)]
    targets = getattr(dataset, "targets", None)
    if targets is not None:
        return np.asarray(targets, dtype=np.int64)
    if isinstance(dataset, UserDataset):
        source_targets = getattr(dataset.source, "targets", None)
        if source_targets is not None:
            return np.asarray(source_targets, dtype=np.int64)
        parent_targets = getattr(dataset.source.dataset, "targets", None) if isinstance(dataset.source, Subset) else None
        if parent_targets is not None:
            return np.asarray(parent_targets, dtype=np.int64)[np.asarray(cast(Subset, dataset.source).indices)]
        return np.asarray([dataset.label(i) for i in range(len(dataset))], dtype=np.int64)
    return np.asarray([int(torch.as_tensor(dataset[i][1])) for i in range(len(cast(Sized, dataset)))], dtype=np.int64)


def subset(dataset: Dataset, indices: Sequence[int] | np.ndarray) -> Dataset:
    if isinstance(dataset, (ArrayDataset, UserDataset)):
        return dataset.subset(indices)
    return Subset(dataset, np.asarray(indices, dtype=np.int64).tolist())


def batches(
    dataset: Dataset,
    batch_size: int,
    shuffle: bool = False,
    generator: torch.Generator | None = None,
) -> Iterator[tuple[Any, torch.Tensor]]:
    """Yield ``(inputs, labels)`` minibatches on the CPU; shuffling is reproducible through ``generator``.

    ``inputs`` is a tensor or a dict of tensors; the model wrapper moves them to its device.
    """
    if isinstance(dataset, ArrayDataset):
        n = len(dataset)
        order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
        for start in range(0, n, batch_size):
            index = order[start : start + batch_size]
            yield dataset.x[index], dataset.y[index]
        return
    if isinstance(dataset, UserDataset):
        loader = DataLoader(
            dataset.source, batch_size=batch_size, shuffle=shuffle, generator=generator, collate_fn=dataset.collate_fn
        )
        for batch in loader:
            x, y = dataset.split(batch)
            yield x, torch.as_tensor(y).long()
        return
    for x, y in DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=generator):
        yield x, torch.as_tensor(y).long()


def num_batches(dataset: Dataset, batch_size: int) -> int:
    return -(-len(cast(Sized, dataset)) // batch_size)


def dataset_sha256(dataset: Dataset) -> str:
    """SHA-256 over every example's inputs and label, in order (dict inputs by sorted key)."""
    if isinstance(dataset, ArrayDataset):
        return dataset.sha256()
    digest = hashlib.sha256()
    for x, y in batches(dataset, 1024):
        parts = [x[k] for k in sorted(x)] if isinstance(x, dict) else [x]
        for part in (*parts, y):
            array = part.detach().cpu().numpy() if torch.is_tensor(part) else np.asarray(part)
            digest.update(sha256_arrays(array).encode())
    return digest.hexdigest()


def is_array_input(dataset: Dataset) -> bool:
    """True when the inputs are one floating tensor per example (what input-space methods perturb)."""
    x, _ = next(batches(dataset, 1))
    return torch.is_tensor(x) and x.is_floating_point()


@dataclass(frozen=True)
class DataSplits:
    """A classification dataset split into train and test, with where each row came from.

    ``train_rows[i]`` is the row number in the source data (e.g. the CSV data row or the
    MNIST training-file position) of training example ``i``; forget requests by row number
    are mapped through it.
    """

    name: str
    train: ArrayDataset
    test: ArrayDataset
    train_rows: np.ndarray
    test_rows: np.ndarray
    class_names: tuple[str, ...]
    preprocessing: str
    # with --subset: how many rows the training split had before sampling (None: the whole split is used)
    subset_of: int | None = None

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.train.x.shape[1:])

    def sha256(self) -> str:
        """SHA-256 of both splits; computed once (hashing MNIST takes ~0.4 s), the splits are immutable."""
        cached = self.__dict__.get("_sha256")
        if cached is None:
            cached = sha256_arrays(self.train.x.numpy(), self.train.y.numpy(), self.test.x.numpy(), self.test.y.numpy())
            object.__setattr__(self, "_sha256", cached)
        return cached

    def positions_of_rows(self, rows: np.ndarray) -> np.ndarray:
        """Map source row numbers to training-set positions; rows in the test split are an error."""
        position = {int(r): i for i, r in enumerate(self.train_rows)}
        held_out = set(int(r) for r in self.test_rows)
        out = np.empty(len(rows), dtype=np.int64)
        for k, row in enumerate(rows):
            row = int(row)
            if row in position:
                out[k] = position[row]
            elif row in held_out:
                raise ForgetSetError(
                    f"row {row} is in the held-out test split, not in the training data; only training rows can be forgotten"
                )
            elif self.subset_of is not None and 0 <= row < self.subset_of + len(self.test_rows):
                raise ForgetSetError(
                    f"row {row} is not among the {len(self.train_rows)} training rows that --subset kept (of "
                    f"{self.subset_of}); only rows the model was trained on can be forgotten"
                )
            else:
                total = (self.subset_of or len(self.train_rows)) + len(self.test_rows)
                raise ForgetSetError(f"forget index {row} is out of range: the data has rows 0..{total - 1}")
        return out

    def without_train_rows(self, rows, why: str) -> DataSplits:
        """The same splits without the training examples whose source row is in ``rows`` (rows not present are ignored)."""
        drop = np.isin(self.train_rows, np.asarray(list(rows), dtype=np.int64))
        keep = np.flatnonzero(~drop)
        return DataSplits(
            name=self.name,
            train=self.train.subset(keep),
            test=self.test,
            train_rows=self.train_rows[keep],
            test_rows=self.test_rows,
            class_names=self.class_names,
            preprocessing=f"{self.preprocessing}; without {int(drop.sum())} training rows ({why})",
            subset_of=self.subset_of,
        )

    def subsample_train(self, size: int, seed: int = 0) -> DataSplits:
        """Keep a stratified random ``size`` of the training split (test split unchanged)."""
        from sklearn.model_selection import train_test_split

        n = len(self.train)
        smallest = 2 * self.num_classes  # every class at least twice: a forget request and a retain set stay possible
        if not smallest <= size < n:
            raise DataError(
                f"--subset must be between {smallest} (two per class, {self.num_classes} classes) and {n - 1} "
                f"(the training split has {n} examples), got {size}"
            )
        labels = self.train.y.numpy()
        try:
            keep, _ = train_test_split(np.arange(n), train_size=size, random_state=seed, stratify=labels)
        except ValueError:
            keep, _ = train_test_split(np.arange(n), train_size=size, random_state=seed)
        keep = np.sort(keep)
        return DataSplits(
            name=self.name,
            train=self.train.subset(keep),
            test=self.test,
            train_rows=self.train_rows[keep],
            test_rows=self.test_rows,
            class_names=self.class_names,
            preprocessing=f"{self.preprocessing}; stratified training subset of {size} (seed {seed})",
            subset_of=self.subset_of or n,
        )

    @classmethod
    def from_arrays(cls, name, x_train, y_train, x_test, y_test, class_names=None) -> DataSplits:
        train = ArrayDataset(x_train, y_train)
        test = ArrayDataset(x_test, y_test)
        n_classes = int(max(train.y.max(), test.y.max())) + 1
        names = tuple(class_names) if class_names is not None else tuple(str(c) for c in range(n_classes))
        return cls(
            name=name,
            train=train,
            test=test,
            train_rows=np.arange(len(train)),
            test_rows=np.arange(len(train), len(train) + len(test)),
            class_names=names,
            preprocessing="as given",
        )
