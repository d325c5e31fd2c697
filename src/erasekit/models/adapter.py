"""Any classifier as erasekit sees it: inputs in, one row of class scores per example out.

:class:`Classifier` wraps a user's ``nn.Module`` so that every training, unlearning and audit
path can call it the same way, wherever it lives and whatever it returns:

- batches move to the model's device, floating inputs take the model's dtype (a bf16 model
  gets bf16 inputs), integer inputs (token ids) stay integers;
- a dict batch is passed as keyword arguments (``model(**batch)``, as Hugging Face models expect);
- the output may be a tensor, a dict or a ``ModelOutput`` with ``logits``, or a tuple whose first
  item is the logits; pass ``logits=`` to say where the class scores are otherwise;
- optional mixed precision (``precision="bf16"``/``"fp16"``) runs the forward under autocast;
- logits come back as float32, so metrics and losses never see half precision.

The wrapper owns no parameters of its own and its ``state_dict`` is the wrapped model's, so
weights, hashes and saved files are exactly the user's model's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from erasekit.core.device import PRECISIONS, DeviceError, autocast, describe_mismatch, model_device, move
from erasekit.core.errors import ModelError

LogitsExtractor = Callable[[Any], torch.Tensor]


def default_logits(output: Any) -> torch.Tensor:
    """The class scores in a model's output: a tensor, ``output["logits"]``, ``output.logits`` or ``output[0]``."""
    if torch.is_tensor(output):
        return output
    if isinstance(output, Mapping) and torch.is_tensor(output.get("logits")):
        return output["logits"]
    logits = getattr(output, "logits", None)
    if torch.is_tensor(logits):
        return logits
    if isinstance(output, (tuple, list)) and output and torch.is_tensor(output[0]):
        return output[0]
    raise ModelError(
        f"the model returned {type(output).__name__}, which holds no 'logits' tensor; "
        "pass logits=lambda output: ... (the [batch, classes] scores) to say where they are"
    )


class Classifier(nn.Module):
    """A user's model with erasekit's calling convention (see the module docstring)."""

    def __init__(self, model: nn.Module, logits: LogitsExtractor | None = None, precision: str = "fp32") -> None:
        super().__init__()
        if not isinstance(model, nn.Module):
            raise ModelError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if precision not in PRECISIONS:
            raise DeviceError(f"unknown precision '{precision}'; use one of {', '.join(PRECISIONS)}")
        self.model = model
        self.extract_logits = logits or default_logits
        self.precision = precision

    @property
    def device(self) -> torch.device:
        return model_device(self.model)

    def forward(self, inputs: Any) -> torch.Tensor:
        first = next(self.model.parameters(), None)
        device = first.device if first is not None else torch.device("cpu")
        float_dtype = first.dtype if first is not None and first.is_floating_point() else None
        inputs = move(inputs, device, float_dtype)
        try:
            with autocast(device, self.precision):
                output = self.model(**inputs) if isinstance(inputs, dict) else self.model(inputs)
        except RuntimeError as exc:
            message = describe_mismatch(exc)
            if message is None:
                raise
            if _has_integer_tensor(inputs) and "dtype" in message:
                message = (
                    "the inputs are integers but the model computes in floating point; cast feature arrays to float32 "
                    "(integer inputs are kept as integers for embedding models)"
                )
            raise DeviceError(message) from None
        logits = self.extract_logits(output)
        if not torch.is_tensor(logits):
            raise ModelError(f"the logits extractor returned {type(logits).__name__}, not a tensor")
        return logits if logits.dtype == torch.float32 else logits.float()

    # the wrapped model's weights, under its own names: hashes and files match the user's model
    def state_dict(self, *args, **kwargs):
        return self.model.state_dict(*args, **kwargs)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        return self.model.load_state_dict(state_dict, strict=strict, assign=assign)


def _has_integer_tensor(inputs: Any) -> bool:
    values = inputs.values() if isinstance(inputs, dict) else [inputs]
    return any(torch.is_tensor(v) and not v.is_floating_point() for v in values)


def as_classifier(model: nn.Module, logits: LogitsExtractor | None = None, precision: str | None = None) -> Classifier:
    """``model`` wrapped in a :class:`Classifier` (returned as is when it already is one and nothing changes)."""
    if isinstance(model, Classifier):
        if (logits is None or logits is model.extract_logits) and (precision is None or precision == model.precision):
            return model
        return Classifier(model.model, logits or model.extract_logits, precision or model.precision)
    if not isinstance(model, nn.Module):
        raise ModelError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    model_device(model)  # a model split across devices is refused here, with a message that says so
    return Classifier(model, logits, precision or "fp32")


def unwrap(model: nn.Module) -> nn.Module:
    """The user's own module inside a :class:`Classifier` (``model`` itself otherwise)."""
    return model.model if isinstance(model, Classifier) else model
