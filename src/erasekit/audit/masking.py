"""Masking part of an image for a CNN: at the input (black or grey), or inside the network (layer masking).

Filling a region with black or grey pixels shows the network a shape it never saw in training;
part of the prediction change is then the mask's own doing ("missingness bias"). Layer masking
(Balasubramanian & Feizi, "Towards Improved Input Masking for Convolutional Neural Networks",
ICCV 2023) instead keeps the masked region out of the computation: before every convolution or
pooling layer, the masked positions of its input are filled from their unmasked neighbours
(neighbour padding), and the mask is carried to the layer's output by a max-pool with the layer's
kernel, stride and padding — every output position whose receptive field touches the mask is
masked in turn. Changing pixels under the mask then cannot change the prediction.

:func:`masking_comparison` measures how much of each strategy's prediction change is due to the
mask shape itself: masks placed on blank background (no evidence to remove) against masks on
the object.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from erasekit.core.errors import ModelError

SPATIAL = (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)
POINTWISE = (nn.ReLU, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh, nn.BatchNorm2d, nn.Dropout, nn.Dropout2d, nn.Identity)


def neighbour_fill(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``x`` ``[B, C, H, W]`` with the ``mask`` ``[B, 1, H, W]`` (True = masked) positions filled from unmasked neighbours.

    Rings of masked positions are filled from the outside in, each with the mean of its already
    known 3×3 neighbours; a sample masked everywhere is filled with 0.
    """
    known = (~mask).to(x.dtype)
    filled = x * known
    remaining = mask.clone()
    kernel = torch.ones(1, 1, 3, 3, dtype=x.dtype, device=x.device)
    channels = x.shape[1]
    for _ in range(x.shape[2] + x.shape[3]):
        if not bool(remaining.any()):
            break
        count = F.conv2d(known, kernel, padding=1)
        total = F.conv2d(filled, kernel.expand(channels, 1, 3, 3), padding=1, groups=channels)
        ring = remaining & (count > 0)
        filled = torch.where(ring, total / count.clamp_min(1), filled)
        known = known + ring.to(x.dtype)
        remaining = remaining & ~ring
    return filled


def propagate_mask(mask: torch.Tensor, layer: nn.Module) -> torch.Tensor:
    """The mask at ``layer``'s output: a max-pool with the layer's kernel, stride, padding and dilation."""
    kernel, stride = getattr(layer, "kernel_size"), getattr(layer, "stride")  # noqa: B009  # conv and pool layers
    padding = getattr(layer, "padding", 0)
    dilation = getattr(layer, "dilation", 1)
    if isinstance(padding, str):
        raise ModelError(f"layer masking needs numeric padding, got padding='{padding}' in {layer}")
    pooled = F.max_pool2d(mask.float(), kernel, stride, padding, dilation)
    return pooled > 0


def layer_masked_logits(model: nn.Sequential, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The outputs of a ``Sequential`` CNN on ``x`` with ``mask`` (True = masked, ``[B, 1, H, W]``) kept out of every layer."""
    if not isinstance(model, nn.Sequential):
        raise ModelError("layer masking walks the layers in order: give an nn.Sequential CNN")
    if mask.shape != (x.shape[0], 1, *x.shape[2:]):
        raise ModelError(f"the mask must have shape [batch, 1, H, W] = {(x.shape[0], 1, *x.shape[2:])}, got {tuple(mask.shape)}")
    h: torch.Tensor = x
    current: torch.Tensor | None = mask.bool()
    for layer in model:
        if current is not None and isinstance(layer, SPATIAL):
            h = layer(neighbour_fill(h, current))
            current = propagate_mask(current, layer)
        elif current is not None and isinstance(layer, nn.Flatten):
            h = layer(neighbour_fill(h, current))
            current = None
        elif current is not None and not isinstance(layer, POINTWISE):
            raise ModelError(
                f"layer masking does not know how {type(layer).__name__} moves positions; use conv, pooling and pointwise layers"
            )
        else:
            h = layer(h)
    return h


@dataclass(frozen=True)
class MaskingRow:
    """One masking strategy: mean prediction change (total variation between output distributions)."""

    strategy: str  # black | grey | layer
    change_on_object: float  # masks covering the object (evidence removed)
    change_on_blank: float  # masks on blank background (no evidence: any change is the mask's own)
    shape_share: float  # change_on_blank / change_on_object


@dataclass(frozen=True)
class MaskingComparison:
    mask_size: int
    images: int
    object_masks: int
    blank_masks: int
    rows: tuple[MaskingRow, ...]


def _probabilities(logits: torch.Tensor) -> torch.Tensor:
    return torch.softmax(logits.double(), dim=1)


@torch.no_grad()
def masking_comparison(
    model: nn.Sequential,
    images: torch.Tensor,
    mask_size: int = 8,
    masks_per_image: int = 4,
    grey: float = 0.5,
    blank_value: float = 0.0,
    seed: int = 0,
) -> MaskingComparison:
    """Black, grey and layer masking of random ``mask_size`` squares, on the object and on blank background.

    A square is on blank background when every pixel under it equals ``blank_value`` (MNIST's
    black), and on the object when at least a quarter of it is ink.
    """
    model.eval()
    rng = np.random.default_rng(seed)
    n, _, height, width = images.shape
    if not 1 <= mask_size < min(height, width):
        raise ModelError(f"mask_size must be between 1 and {min(height, width) - 1}, got {mask_size}")
    reference = _probabilities(model(images))
    changes: dict[tuple[str, str], list[float]] = {(s, r): [] for s in ("black", "grey", "layer") for r in ("object", "blank")}
    for _ in range(masks_per_image):
        tops = rng.integers(0, height - mask_size + 1, n)
        lefts = rng.integers(0, width - mask_size + 1, n)
        mask = torch.zeros(n, 1, height, width, dtype=torch.bool)
        for i, (top, left) in enumerate(zip(tops, lefts)):
            mask[i, :, top : top + mask_size, left : left + mask_size] = True
        covered = torch.where(mask, images, torch.full_like(images, blank_value))
        ink = ((covered != blank_value) & mask).float().sum(dim=(1, 2, 3)) / (mask.float().sum(dim=(1, 2, 3)) * images.shape[1])
        region = np.where(ink.numpy() == 0, "blank", np.where(ink.numpy() >= 0.25, "object", "edge"))
        outputs = {
            "black": model(torch.where(mask, torch.zeros_like(images), images)),
            "grey": model(torch.where(mask, torch.full_like(images, grey), images)),
            "layer": layer_masked_logits(model, images, mask),
        }
        for strategy, logits in outputs.items():
            distance = 0.5 * (_probabilities(logits) - reference).abs().sum(dim=1).numpy()
            for kind in ("object", "blank"):
                changes[(strategy, kind)].extend(distance[region == kind].tolist())
    object_count, blank_count = len(changes[("black", "object")]), len(changes[("black", "blank")])
    if object_count == 0 or blank_count == 0:
        raise ModelError("no mask landed on blank background or on the object; use more images or a smaller mask_size")
    rows = []
    for strategy in ("black", "grey", "layer"):
        on_object = float(np.mean(changes[(strategy, "object")]))
        on_blank = float(np.mean(changes[(strategy, "blank")]))
        rows.append(MaskingRow(strategy, on_object, on_blank, on_blank / max(on_object, 1e-12)))
    return MaskingComparison(mask_size, n, object_count, blank_count, tuple(rows))
