"""Reference classifiers: a small MLP and a small CNN. Any user ``nn.Module`` works too."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Literal

from torch import nn

from erasekit.core.errors import ModelError, suggest
from erasekit.core.rng import seeded

ARCHITECTURES = ("mlp", "cnn")
# bounds on sizes read from a file: a sidecar edited to absurd sizes must not allocate terabytes
MAX_INPUT_SIZE = 50_000_000
MAX_LAYER_WIDTH = 1_000_000


@dataclass(frozen=True)
class ModelSpec:
    """Enough to rebuild a reference architecture: name, input shape and number of classes."""

    architecture: Literal["mlp", "cnn"]
    input_shape: tuple[int, ...]
    num_classes: int
    hidden: int = 128

    def build(self, seed: int | None = None) -> nn.Module:
        """A freshly initialised model; ``seed`` makes the initial weights reproducible (the caller's RNG is untouched)."""
        if seed is None:
            return self._build()
        with seeded(seed):
            return self._build()

    def _build(self) -> nn.Module:
        if self.architecture == "mlp":
            width = math.prod(self.input_shape)
            return nn.Sequential(
                nn.Flatten(),
                nn.Linear(width, 2 * self.hidden),
                nn.ReLU(),
                nn.Linear(2 * self.hidden, self.hidden),
                nn.ReLU(),
                nn.Linear(self.hidden, self.num_classes),
            )
        if self.architecture == "cnn":
            if len(self.input_shape) != 3:
                raise ModelError(
                    f"the cnn needs image input (channels, height, width), got shape {self.input_shape}; use --model mlp"
                )
            channels, height, width = self.input_shape
            return nn.Sequential(
                nn.Conv2d(channels, 16, 3, padding=1),
                nn.ReLU(),
                nn.MaxPool2d(2),
                nn.Conv2d(16, 32, 3, padding=1),
                nn.ReLU(),
                nn.MaxPool2d(2),
                nn.Flatten(),
                nn.Linear(32 * (height // 4) * (width // 4), self.hidden),
                nn.ReLU(),
                nn.Linear(self.hidden, self.num_classes),
            )
        raise ModelError(
            f"unknown architecture '{self.architecture}'{suggest(self.architecture, ARCHITECTURES)}; "
            f"choose one of {', '.join(ARCHITECTURES)}"
        )

    def to_dict(self) -> dict:
        data = asdict(self)
        data["input_shape"] = list(self.input_shape)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> ModelSpec:
        """Read a spec from a file, bounding every size before anything is allocated."""
        architecture = data["architecture"]
        if architecture not in ARCHITECTURES:
            raise ModelError(f"unknown architecture {architecture!r}{suggest(str(architecture), ARCHITECTURES)}")
        shape = data["input_shape"]
        if not isinstance(shape, list) or not shape or not all(isinstance(v, int) and not isinstance(v, bool) for v in shape):
            raise ModelError(f"input_shape must be a list of integers, got {shape!r}")
        sizes = {"num_classes": data["num_classes"], "hidden": data.get("hidden", 128)}
        for name, value in sizes.items():
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_LAYER_WIDTH:
                raise ModelError(f"{name} must be an integer in 1..{MAX_LAYER_WIDTH:,}, got {value!r}")
        if any(v < 1 for v in shape) or math.prod(shape) > MAX_INPUT_SIZE:
            raise ModelError(f"input_shape {shape} is not a plausible input (each size ≥ 1, at most {MAX_INPUT_SIZE:,} values)")
        return cls(architecture=architecture, input_shape=tuple(shape), num_classes=sizes["num_classes"], hidden=sizes["hidden"])


def build_model(architecture: str, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    return ModelSpec(architecture, tuple(input_shape), num_classes).build()  # type: ignore[arg-type]
