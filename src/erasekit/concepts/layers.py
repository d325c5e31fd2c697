"""Erase a concept inside a model: at named layers, through forward hooks.

Hooks only live inside :func:`erased_layers` (removed in ``finally``). Layer outputs are
flattened to ``[batch, features]`` for the eraser and reshaped back, so any layer whose
output is one tensor works; the concept label is per example.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

from erasekit.concepts.base import AffineEraser, ConceptEraser, eraser_fitter, keep_constant_columns
from erasekit.concepts.encoding import ConceptEncoding
from erasekit.core.errors import ConceptError, suggest


def find_layer(model: nn.Module, name: str) -> nn.Module:
    modules = dict(model.named_modules())
    if name not in modules or name == "":
        names = [n for n in modules if n]
        raise ConceptError(
            f"layer '{name}' is not in the model{suggest(name, names)}; layers: {', '.join(names[:20])}"
            + (" …" if len(names) > 20 else "")
        )
    return modules[name]


def _affine_in_graph(eraser: ConceptEraser, output: torch.Tensor) -> torch.Tensor:
    """Differentiable application in the output's dtype (gradients flow through the edit)."""
    if not isinstance(eraser, AffineEraser):
        raise ConceptError(
            f"the {eraser.method} eraser needs labels when applied and cannot run inside a model; use leace, leace_orth or inlp"
        )
    flat = output.reshape(len(output), -1)
    if flat.shape[1] != eraser.x_dim:
        raise ConceptError(f"the eraser was fitted on {eraser.x_dim} features but the layer outputs {flat.shape[1]} per example")
    left, right, bias = (t.to(device=flat.device, dtype=flat.dtype) for t in (eraser.proj_left, eraser.proj_right, eraser.bias))
    erased = flat - ((flat - bias) @ right.T) @ left.T
    return keep_constant_columns(erased, flat, eraser.constant_columns).reshape(output.shape)


@contextmanager
def erased_layers(model: nn.Module, erasers: Mapping[str, ConceptEraser]) -> Iterator[nn.Module]:
    """Within the block, each named layer's output passes through its eraser."""
    handles = []
    try:
        for name, eraser in erasers.items():
            layer = find_layer(model, name)
            handles.append(layer.register_forward_hook(lambda _m, _i, out, e=eraser: _affine_in_graph(e, _tensor_output(out))))
        yield model
    finally:
        for handle in handles:
            handle.remove()


def _tensor_output(output) -> torch.Tensor:
    if not torch.is_tensor(output):
        raise ConceptError(f"erasure hooks need a layer that returns one tensor, got {type(output).__name__}")
    return output


@torch.no_grad()
def collect_activations(model: nn.Module, layer: str, inputs: Iterable[torch.Tensor]) -> torch.Tensor:
    """Outputs of ``layer`` for every input batch, flattened to ``[n, features]`` (model in eval mode)."""
    captured: list[torch.Tensor] = []
    handle = find_layer(model, layer).register_forward_hook(
        lambda _m, _i, out: captured.append(_tensor_output(out).detach().reshape(len(out), -1).cpu())
    )
    was_training = model.training
    model.eval()
    try:
        for batch in inputs:
            model(batch)
    finally:
        handle.remove()
        model.train(was_training)
    return torch.cat(captured)


def fit_layer_erasers(
    model: nn.Module,
    layers: Sequence[str],
    inputs: Sequence[torch.Tensor],
    z,
    method: str = "leace",
    params=None,
) -> dict[str, ConceptEraser]:
    """Fit one eraser per layer, in order; each is fitted on activations already erased upstream.

    ``inputs`` are the model's input batches (a list of tensors), ``z`` the concept label of
    every example in them, in the same order.
    """
    z = np.asarray(z)
    encoding = ConceptEncoding.infer(z)
    fitted: dict[str, ConceptEraser] = {}
    for layer in layers:
        find_layer(model, layer)
        with erased_layers(model, fitted):
            activations = collect_activations(model, layer, inputs)
        if len(activations) != len(z):
            raise ConceptError(f"the inputs hold {len(activations)} examples but z has {len(z)} labels")
        fitted[layer] = eraser_fitter(method, activations.shape[1], encoding, params).update(activations, z).eraser()
    return fitted
