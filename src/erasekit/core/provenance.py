"""Hashes, versions and hardware: the provenance that travels with every result."""

from __future__ import annotations

import hashlib
import os
import platform
import shlex
import sys
from dataclasses import dataclass
from datetime import UTC, datetime

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
        if tensor.device.type == "meta":  # shapes only (PyTorch's data-free device, used to test device plumbing)
            digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}:meta".encode())
            continue
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

    from erasekit._version import __version__

    return {
        "erasekit": __version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "python": platform.python_version(),
    }


def now_utc() -> str:
    """The current time, ISO 8601 in UTC, to the second."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def command_line() -> str:
    """The running ``erasekit`` command line, or ``""`` when erasekit is used as a library."""
    if sys.argv and os.path.basename(sys.argv[0]) in ("erasekit", "__main__.py"):
        return shlex.join(["erasekit", *sys.argv[1:]])
    return ""


@dataclass(frozen=True)
class Hardware:
    """Where a result was computed."""

    machine: str
    system: str
    cpu_count: int
    torch_threads: int
    device: str

    @classmethod
    def current(cls, device: str = "cpu") -> Hardware:
        name = device
        if device.startswith("cuda") and torch.cuda.is_available():
            name = f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
        return cls(
            platform.machine(), f"{platform.system()} {platform.release()}", os.cpu_count() or 1, torch.get_num_threads(), name
        )


@dataclass(frozen=True)
class Provenance:
    """What is needed to reproduce one result: versions, hardware, seeds and content hashes.

    ``weights_sha256_before``/``after``: SHA-256 of the model state per seed, before the
    removal (the original) and after it (the new model); empty where no model is involved.
    """

    versions: dict[str, str]
    hardware: Hardware
    created_at: str
    seeds: tuple[int, ...] = ()
    data_sha256: str = ""
    weights_sha256_before: tuple[str, ...] = ()
    weights_sha256_after: tuple[str, ...] = ()
    command: str = ""

    @classmethod
    def collect(cls, seeds=(), data_sha256: str = "", before=(), after=(), command: str = "", device: str = "cpu") -> Provenance:
        """Provenance of a result computed now, in this process. ``command``: the command line that asked for it
        (the CLI passes :func:`command_line`; library calls leave it empty)."""
        return cls(
            versions=library_versions(),
            hardware=Hardware.current(device),
            created_at=now_utc(),
            seeds=tuple(int(s) for s in seeds),
            data_sha256=data_sha256,
            weights_sha256_before=tuple(before),
            weights_sha256_after=tuple(after),
            command=command,
        )
