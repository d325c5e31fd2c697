"""Where work runs: the device a model lives on, moving batches there, and optional mixed precision.

erasekit never decides the device behind the user's back: every computation runs where the
model's parameters are (:func:`model_device`), and batches follow the model. The CLI's
``--device`` resolves through :func:`resolve_device`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any, Literal

import torch
from torch import nn

from erasekit.core.errors import ModelError

Precision = Literal["fp32", "bf16", "fp16"]
PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "fp16")
DEVICE_HELP = "auto (CUDA when available, else MPS, else CPU) | cpu | cuda | cuda:N | mps"


class DeviceError(ModelError):
    """A requested device is not available, or a model's tensors are spread over several devices."""


def resolve_device(spec: str | torch.device | None = "auto") -> torch.device:
    """Turn ``auto|cpu|cuda|cuda:N|mps`` into a :class:`torch.device` that exists on this machine."""
    if isinstance(spec, torch.device):
        return spec
    text = (spec or "auto").strip().lower()
    if text == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(text)
    except RuntimeError:
        raise DeviceError(f"unknown device '{spec}'; use {DEVICE_HELP}") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(
                f"device '{spec}' was requested but this machine has no CUDA GPU (or this torch build has no CUDA); use --device cpu"
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceError(
                f"device '{spec}' does not exist: this machine has {torch.cuda.device_count()} CUDA device(s), cuda:0.."
            )
    elif device.type == "mps" and not _mps_available():
        raise DeviceError(f"device '{spec}' was requested but MPS is not available here; use --device cpu")
    elif device.type not in ("cpu", "cuda", "mps", "meta"):
        raise DeviceError(f"unsupported device '{spec}'; use {DEVICE_HELP}")
    return device


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's parameters (buffers when it has none; CPU for a stateless module).

    Raises :class:`DeviceError` when the parameters sit on several devices: erasekit moves each
    batch to one device, so a model split across devices cannot be run as a whole.
    """
    devices = {t.device for t in model.parameters()} or {t.device for t in model.buffers()}
    if not devices:
        return torch.device("cpu")
    if len(devices) > 1:
        names = ", ".join(sorted(str(d) for d in devices))
        raise DeviceError(f"the model's parameters are on several devices ({names}); move the whole model with model.to(device)")
    return next(iter(devices))


def move(value: Any, device: torch.device, float_dtype: torch.dtype | None = None) -> Any:
    """``value`` (a tensor, or dicts/lists/tuples of them) on ``device``; floating tensors cast to ``float_dtype``.

    Integer tensors (token ids, labels) keep their dtype.
    """
    if torch.is_tensor(value):
        if float_dtype is not None and value.is_floating_point() and value.dtype != float_dtype:
            return value.to(device=device, dtype=float_dtype, non_blocking=True)
        return value.to(device, non_blocking=True) if value.device != device else value
    if isinstance(value, Mapping):
        return {k: move(v, device, float_dtype) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(move(v, device, float_dtype) for v in value)
    return value


@contextlib.contextmanager
def autocast(device: torch.device, precision: str) -> Iterator[None]:
    """Mixed precision for ``bf16``/``fp16`` on ``device``; a no-op for ``fp32``."""
    if precision == "fp32":
        yield
        return
    if precision not in PRECISIONS:
        raise DeviceError(f"unknown precision '{precision}'; use one of {', '.join(PRECISIONS)}")
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    with torch.autocast(device_type=device.type if device.type != "meta" else "cpu", dtype=dtype):
        yield


def describe_mismatch(exc: BaseException) -> str | None:
    """A clear sentence for torch's device/dtype mismatch errors (None when ``exc`` is something else)."""
    text = str(exc)
    if "device" in text and ("Expected all tensors" in text or "is not on the expected device" in text or "same device" in text):
        return "the model and its inputs are on different devices (a module or buffer was left behind when the model was moved); move the whole model with model.to(device)"
    if ("dtype" in text and ("expected" in text.lower() or "mismatch" in text.lower())) or "must have the same dtype" in text:
        return f"the model's parameters have mixed dtypes ({text.splitlines()[0]}); cast the whole model, e.g. model.to(torch.bfloat16), or use --precision"
    return None
