"""In-memory datasets and batching used by training, unlearning and the audit."""

from __future__ import annotations

from collections.abc import Iterator, Sequence, Sized
from dataclasses import dataclass
from typing import cast

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset

from erasekit.core.errors import DataError, ForgetSetError
from erasekit.core.provenance import sha256_arrays


class ArrayDataset(Dataset):
    """Inputs ``x`` (float32, shape ``[N, *input_shape]``) and integer labels ``y`` (``[N]``).

    Batches are sliced straight from the tensors, which is much faster than per-item
    collation; any other ``torch.utils.data.Dataset`` of ``(x, y)`` pairs also works
    everywhere erasekit takes a dataset.
    """

    def __init__(self, x, y):
        x = torch.as_tensor(np.asarray(x) if not torch.is_tensor(x) else x, dtype=torch.float32)
        y = torch.as_tensor(np.asarray(y) if not torch.is_tensor(y) else y, dtype=torch.int64)
        if x.ndim < 1 or y.ndim != 1 or len(x) != len(y):
            raise DataError(
                f"inputs and labels disagree: x has shape {tuple(x.shape)}, y has shape "
                f"{tuple(y.shape)}; pass one label per example"
            )
        if not torch.isfinite(x).all():
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


def labels_of(dataset: Dataset) -> np.ndarray:
    """Integer labels of every example, without materialising inputs when avoidable."""
    if isinstance(dataset, ArrayDataset):
        return dataset.y.numpy()
    if isinstance(dataset, Subset):
        return labels_of(dataset.dataset)[np.asarray(dataset.indices)]
    targets = getattr(dataset, "targets", None)
    if targets is not None:
        return np.asarray(targets, dtype=np.int64)
    return np.asarray([int(dataset[i][1]) for i in range(len(cast(Sized, dataset)))], dtype=np.int64)


def subset(dataset: Dataset, indices: Sequence[int] | np.ndarray) -> Dataset:
    if isinstance(dataset, ArrayDataset):
        return dataset.subset(indices)
    return Subset(dataset, np.asarray(indices, dtype=np.int64).tolist())


def batches(
    dataset: Dataset,
    batch_size: int,
    shuffle: bool = False,
    generator: torch.Generator | None = None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield ``(x, y)`` minibatches; shuffling is reproducible through ``generator``."""
    if isinstance(dataset, ArrayDataset):
        n = len(dataset)
        order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
        for start in range(0, n, batch_size):
            index = order[start : start + batch_size]
            yield dataset.x[index], dataset.y[index]
        return
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=generator)
    for x, y in loader:
        yield x.float(), y.long()


def num_batches(dataset: Dataset, batch_size: int) -> int:
    return -(-len(cast(Sized, dataset)) // batch_size)


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
            else:
                total = len(self.train_rows) + len(self.test_rows)
                raise ForgetSetError(f"forget index {row} is out of range: the data has rows 0..{total - 1}")
        return out

    def subsample_train(self, size: int, seed: int = 0) -> DataSplits:
        """Keep a stratified random ``size`` of the training split (test split unchanged)."""
        from sklearn.model_selection import train_test_split

        n = len(self.train)
        if not 0 < size < n:
            raise DataError(f"--subset must be between 1 and {n - 1} (the training split has {n} examples), got {size}")
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
