"""Hashes and version records that travel with every result."""

from __future__ import annotations

import hashlib
import platform
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn


def sha256_arrays(*arrays: np.ndarray) -> str:
    """SHA-256 over dtype, shape and bytes of each array, in order."""
    digest = hashlib.sha256()
    for array in arrays:
        contiguous = np.ascontiguousarray(array)
        digest.update(str(contiguous.dtype).encode())
        digest.update(str(contiguous.shape).encode())
        digest.update(contiguous.tobytes())
    return digest.hexdigest()


def sha256_state(model: nn.Module) -> str:
    """SHA-256 of a model's state dict: names, dtypes, shapes and bytes, sorted by name."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        value = tensor.detach().cpu().contiguous()
        digest.update(name.encode())
        digest.update(str(value.dtype).encode())
        digest.update(str(tuple(value.shape)).encode())
        digest.update(value.view(torch.uint8).numpy().tobytes() if value.numel() else b"")
    return digest.hexdigest()


def sha256_file(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def library_versions() -> dict[str, str]:
    """Versions of erasekit and the libraries whose behaviour the numbers depend on."""
    import sklearn

    from erasekit import __version__

    return {
        "erasekit": __version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "python": platform.python_version(),
    }


@dataclass(frozen=True)
class Provenance:
    """What is needed to reproduce one result: versions, seeds and content hashes."""

    seeds: tuple[int, ...]
    data_sha256: str
    original_weights_sha256: tuple[str, ...]
    result_weights_sha256: tuple[str, ...]
    versions: dict[str, str] = field(default_factory=library_versions)
