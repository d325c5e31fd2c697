"""Reference classifiers: a small MLP and a small CNN. Any user ``nn.Module`` works too."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Literal

from torch import nn

from erasekit.core.errors import ModelError, suggest
from erasekit.core.rng import seeded

ARCHITECTURES = ("mlp", "cnn")


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
        return cls(
            architecture=data["architecture"],
            input_shape=tuple(int(v) for v in data["input_shape"]),
            num_classes=int(data["num_classes"]),
            hidden=int(data.get("hidden", 128)),
        )


def build_model(architecture: str, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    return ModelSpec(architecture, tuple(input_shape), num_classes).build()  # type: ignore[arg-type]
