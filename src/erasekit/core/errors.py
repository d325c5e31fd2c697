"""Exception types: every user-facing failure in erasekit is an :class:`ErasekitError`.

The CLI turns any of these into one line on stderr and exit code 2. Messages name the
problem and, where there is one, the fix.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class ErasekitError(Exception):
    """Base class for all errors erasekit raises on bad input or unusable files."""


class DataError(ErasekitError):
    """A dataset is unreadable, truncated, malformed or contains NaN/inf."""


class ForgetSetError(ErasekitError):
    """The forget set is empty, out of range, duplicated, or names a missing class."""


class ModelError(ErasekitError):
    """A model does not fit the data, or a model file fails its integrity check."""


class MethodError(ErasekitError):
    """An unknown method name or an invalid method parameter."""


class ConceptError(ErasekitError):
    """Concept labels or features unfit for erasure (length mismatch, one class, too few samples)."""


class OutputError(ErasekitError):
    """An output location cannot be written."""


class StorageFault(OutputError):
    """The environment refused a read or write that should work: the disk is full, a quota is
    exceeded, a path is read-only or not permitted. Nothing is wrong with the input; the same
    command succeeds once the fault is fixed. ``errno`` is the operating system's code, if known."""

    def __init__(self, message: str, errno: int | None = None):
        super().__init__(message)
        self.errno = errno


class LedgerError(ErasekitError):
    """The ledger database cannot be reached or used, or a request cannot be recorded."""


class CacheError(ErasekitError):
    """A model-cache entry fails its integrity check or does not match the request that looked it up."""


class FieldError(DataError, ValueError):
    """A field table unfit for selection or CTR training (also a ValueError, as scikit-learn expects)."""


class MissingExtraError(ErasekitError):
    """An optional dependency is not installed; the message names the ``pip install 'erasekit[extra]'`` that adds it."""


def suggest(name: str, choices: Iterable[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` for the closest choices, or ``""``."""
    close = difflib.get_close_matches(name, list(choices), n=3, cutoff=0.5)
    if not close:
        return ""
    return " (did you mean " + " or ".join(f"'{c}'" for c in close) + "?)"
