"""Randomness without side effects: library calls never change the caller's global RNG state.

Torch initialisers (``nn.Linear.reset_parameters`` …) draw from the global generator, so
seeded work runs inside :func:`seeded`, which forks the CPU (and, where present, CUDA)
generator state, seeds it, and restores the caller's state on exit.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run the block with torch's global generators seeded by ``seed``; restore the caller's state afterwards.

    Every CUDA device is forked whenever CUDA exists, not only when it is already initialised: the block may
    move a model to the GPU, and ``manual_seed`` would otherwise leave a seeded CUDA generator behind.
    """
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def generator(seed: int, device: torch.device | str | None = None) -> torch.Generator:
    """A local torch generator seeded with ``seed`` (shuffling, noise, random labels)."""
    return torch.Generator(device=device or "cpu").manual_seed(int(seed))
