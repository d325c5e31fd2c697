"""Erase a concept inside a model: at named layers, through forward hooks.

Hooks only live inside :func:`erased_layers` (removed in ``finally``). What one *sample* of a
layer's output is:

- ``per="example"``: the whole output of one example, flattened (an MLP or CNN layer);
- ``per="token"``: each position of a ``[batch, tokens, hidden]`` output (a transformer
  layer): every token is one sample labelled with its example's concept, as concept-erasure's
  scrubbing does; padded tokens (``attention_mask`` 0) are left out of the fit. The eraser is
  ``hidden``-wide, so a transformer needs a hidden×hidden covariance, not tokens×hidden;
- ``per="auto"`` (default): ``token`` for 3-D outputs, ``example`` otherwise.

To erase at a pooled output instead, name the layer that pools (e.g. BERT's ``bert.pooler``):
its output is one vector per example. An eraser is applied per token or per example by its
width, so :func:`erased_layers` needs no option. Layers may return a tensor or a tuple whose
first item is the hidden states (as Hugging Face layers do). Inputs are tensors or dicts of
tensors (passed as keyword arguments), moved to the model's device; statistics are kept there.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from erasekit.concepts.base import AffineEraser, ConceptEraser, EraserFitter, eraser_fitter, keep_constant_columns
from erasekit.concepts.encoding import ConceptEncoding
from erasekit.core.device import model_device, move
from erasekit.core.errors import ConceptError, suggest

Granularity = Literal["auto", "example", "token"]
GRANULARITIES = ("auto", "example", "token")


def find_layer(model: nn.Module, name: str) -> nn.Module:
    modules = dict(model.named_modules())
    if name not in modules or name == "":
        names = [n for n in modules if n]
        raise ConceptError(
            f"layer '{name}' is not in the model{suggest(name, names)}; layers: {', '.join(names[:20])}"
            + (" …" if len(names) > 20 else "")
        )
    return modules[name]


def _split_output(output: Any) -> tuple[torch.Tensor, Any]:
    """The hidden states of a layer's output and a function that puts edited states back."""
    if torch.is_tensor(output):
        return output, None
    if isinstance(output, tuple) and output and torch.is_tensor(output[0]):
        return output[0], output[1:]
    raise ConceptError(
        f"erasure hooks need a layer that returns a tensor (or a tuple starting with one), got {type(output).__name__}"
    )


def _rebuild(hidden: torch.Tensor, rest: Any) -> Any:
    return hidden if rest is None else (hidden, *rest)


def _granularity(output: torch.Tensor, per: str) -> str:
    if per not in GRANULARITIES:
        raise ConceptError(f"per must be one of {', '.join(GRANULARITIES)}, got '{per}'")
    if per == "auto":
        return "token" if output.ndim == 3 else "example"
    if per == "token" and output.ndim < 3:
        raise ConceptError(f"per='token' needs a [batch, tokens, hidden] output, but the layer outputs {tuple(output.shape)}")
    return per


def _rows(output: torch.Tensor, per: str) -> torch.Tensor:
    return output.reshape(-1, output.shape[-1]) if per == "token" else output.reshape(len(output), -1)


def _affine_in_graph(eraser: ConceptEraser, output: torch.Tensor) -> torch.Tensor:
    """Differentiable application in the output's dtype (gradients flow through the edit)."""
    if not isinstance(eraser, AffineEraser):
        raise ConceptError(
            f"the {eraser.method} eraser needs labels when applied and cannot run inside a model; use leace, leace_orth or inlp"
        )
    per_example = output[0].numel() if len(output) else 0
    if output.ndim >= 3 and output.shape[-1] == eraser.x_dim and per_example != eraser.x_dim:
        flat = output.reshape(-1, output.shape[-1])  # fitted per token
    else:
        flat = output.reshape(len(output), -1)
    if flat.shape[1] != eraser.x_dim:
        raise ConceptError(
            f"the eraser was fitted on {eraser.x_dim} features but the layer outputs {tuple(output.shape[1:])} per example"
        )
    left, right, bias = (t.to(device=flat.device, dtype=flat.dtype) for t in (eraser.proj_left, eraser.proj_right, eraser.bias))
    erased = flat - ((flat - bias) @ right.T) @ left.T
    return keep_constant_columns(erased, flat, eraser.constant_columns).reshape(output.shape)


def _erase_hook(eraser: ConceptEraser):
    def hook(_module, _inputs, output):
        hidden, rest = _split_output(output)
        return _rebuild(_affine_in_graph(eraser, hidden), rest)

    return hook


@contextmanager
def erased_layers(model: nn.Module, erasers: Mapping[str, ConceptEraser]) -> Iterator[nn.Module]:
    """Within the block, each named layer's output passes through its eraser (per token or per example, by its width)."""
    handles = []
    try:
        for name, eraser in erasers.items():
            layer = find_layer(model, name)
            handles.append(layer.register_forward_hook(_erase_hook(eraser)))
        yield model
    finally:
        for handle in handles:
            handle.remove()


def _forward(model: nn.Module, batch: Any) -> None:
    inputs = move(batch, model_device(model))
    model(**inputs) if isinstance(inputs, dict) else model(inputs)


def _token_mask(batch: Any, output: torch.Tensor) -> torch.Tensor | None:
    """Which token rows are real (the batch's ``attention_mask``), flattened; None when every token counts."""
    mask = batch.get("attention_mask") if isinstance(batch, Mapping) else None
    if mask is None or tuple(mask.shape) != tuple(output.shape[:2]):
        return None
    return mask.reshape(-1).to(device=output.device, dtype=torch.bool)


def _batch_size(batch: Any) -> int:
    if isinstance(batch, Mapping):
        return len(next(iter(batch.values())))
    return len(batch)


def _layer_rows(model: nn.Module, layer: str, inputs: Iterable[Any], per: str) -> Iterator[tuple[torch.Tensor, np.ndarray]]:
    """For each input batch: the layer's sample rows (on the model's device) and each row's example index."""
    captured: list[torch.Tensor] = []
    handle = find_layer(model, layer).register_forward_hook(lambda _m, _i, out: captured.append(_split_output(out)[0].detach()))
    was_training = model.training
    model.eval()
    offset = 0
    try:
        with torch.no_grad():
            for batch in inputs:
                captured.clear()
                _forward(model, batch)
                if not captured:
                    raise ConceptError(f"layer '{layer}' did not run in the model's forward pass")
                output = captured[-1]
                granularity = _granularity(output, per)
                rows = _rows(output, granularity)
                size = _batch_size(batch)
                examples = np.arange(offset, offset + size)
                if granularity == "token":
                    examples = np.repeat(examples, output.shape[1])
                    mask = _token_mask(batch, output)
                    if mask is not None:
                        rows, examples = rows[mask], examples[mask.cpu().numpy()]
                offset += size
                yield rows, examples
    finally:
        handle.remove()
        model.train(was_training)


def collect_activations(model: nn.Module, layer: str, inputs: Iterable[Any], per: Granularity = "example") -> torch.Tensor:
    """Outputs of ``layer`` for every input batch as ``[samples, features]`` rows, on the CPU (model in eval mode).

    ``per="example"`` flattens each example; ``per="token"`` gives one row per (unpadded) token.
    """
    return torch.cat([rows.cpu() for rows, _ in _layer_rows(model, layer, inputs, per)])


def fit_layer_erasers(
    model: nn.Module,
    layers: Sequence[str],
    inputs: Sequence[Any],
    z,
    method: str = "leace",
    params=None,
    per: Granularity = "auto",
) -> dict[str, ConceptEraser]:
    """Fit one eraser per layer, in order; each is fitted on activations already erased upstream.

    ``inputs`` are the model's input batches (tensors or dicts, re-iterable: a list or a
    DataLoader), ``z`` the concept label of every example in them, in the same order. Batches
    stream through the fitter where the model is, so activations are never all held at once.
    """
    z = np.asarray(z)
    dataset = getattr(inputs, "dataset", None)
    total = len(dataset) if dataset is not None else sum(_batch_size(batch) for batch in inputs)
    if total != len(z):
        raise ConceptError(f"the inputs hold {total} examples but z has {len(z)} labels; give one concept label per example")
    encoding = ConceptEncoding.infer(z)
    fitted: dict[str, ConceptEraser] = {}
    for layer in layers:
        find_layer(model, layer)
        fitter: EraserFitter | None = None
        with erased_layers(model, fitted):
            for rows, examples in _layer_rows(model, layer, inputs, per):
                if fitter is None:
                    fitter = eraser_fitter(method, rows.shape[1], encoding, params)
                fitter.update(rows, z[examples])
        if fitter is None:
            raise ConceptError("no input batches were given")
        fitted[layer] = fitter.eraser()
    return fitted
