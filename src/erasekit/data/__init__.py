"""Datasets, loaders and forget-set selection."""

from erasekit.data.dataset import (
    ArrayDataset,
    DataSplits,
    UserDataset,
    as_dataset,
    batches,
    dataset_sha256,
    labels_of,
    num_batches,
    subset,
)
from erasekit.data.forget import ForgetSpec
from erasekit.data.loaders import load_csv, load_data, load_digits, load_mnist

__all__ = [
    "ArrayDataset",
    "DataSplits",
    "ForgetSpec",
    "UserDataset",
    "as_dataset",
    "batches",
    "dataset_sha256",
    "labels_of",
    "load_csv",
    "load_data",
    "load_digits",
    "load_mnist",
    "num_batches",
    "subset",
]
