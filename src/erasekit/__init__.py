"""erasekit — remove training data, concepts and features from ML models, and prove it.

The names below load on first use, so ``import erasekit`` (and ``erasekit --help``) does not
pay for torch, pandas or scipy until they are needed.
"""

from __future__ import annotations

import importlib

from erasekit._version import __version__

_EXPORTS = {
    "ArrayDataset": "erasekit.data",
    "DataSplits": "erasekit.data",
    "ForgetSpec": "erasekit.data",
    "load_data": "erasekit.data",
    "ErasekitError": "erasekit.core.errors",
    "ConceptError": "erasekit.core.errors",
    "DataError": "erasekit.core.errors",
    "FieldError": "erasekit.core.errors",
    "ForgetSetError": "erasekit.core.errors",
    "LedgerError": "erasekit.core.errors",
    "MethodError": "erasekit.core.errors",
    "MissingExtraError": "erasekit.core.errors",
    "ModelError": "erasekit.core.errors",
    "OutputError": "erasekit.core.errors",
    "Provenance": "erasekit.core.provenance",
    "build_model": "erasekit.models",
    "load_model": "erasekit.training",
    "save_model": "erasekit.training",
    "Recipe": "erasekit.training",
    "train": "erasekit.training",
    "Unlearned": "erasekit.unlearn",
    "UnlearningTask": "erasekit.unlearn",
    "available_methods": "erasekit.unlearn",
    "unlearn": "erasekit.unlearn",
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'erasekit' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
