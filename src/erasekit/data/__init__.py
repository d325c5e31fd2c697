"""Datasets, loaders and forget-set selection."""

from erasekit.data.dataset import ArrayDataset, DataSplits, batches, labels_of, num_batches, subset
from erasekit.data.forget import ForgetSpec
from erasekit.data.loaders import load_csv, load_data, load_digits, load_mnist

__all__ = [
    "ArrayDataset",
    "DataSplits",
    "ForgetSpec",
    "batches",
    "labels_of",
    "load_csv",
    "load_data",
    "load_digits",
    "load_mnist",
    "num_batches",
    "subset",
]
