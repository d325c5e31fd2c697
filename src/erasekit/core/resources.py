"""Wall-clock seconds and peak memory of a block of work: resident memory on the CPU, allocated memory on a CUDA GPU."""

from __future__ import annotations

import os
import resource
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * _PAGE
    except OSError:  # not Linux: fall back to the process-lifetime peak
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@dataclass
class Cost:
    """Filled in when the ``measure`` block ends."""

    seconds: float = 0.0
    peak_memory_mb: float = 0.0  # peak above the level at the start: resident set size, or CUDA memory on a GPU
    memory_kind: str = "cpu-rss"  # "cpu-rss" | "cuda-allocated"


@contextmanager
def measure(sample_every: float = 0.005, device=None) -> Iterator[Cost]:
    """Time a block and sample its resident memory from a background thread.

    On a CUDA ``device`` the peak is CUDA's allocated memory above the level at the start
    (the work's tensors live there); the block is synchronised before the clock stops.
    """
    if device is not None and getattr(device, "type", None) == "cuda":
        with _measure_cuda(device) as cost:
            yield cost
        return
    cost = Cost()
    start_rss = _rss_bytes()
    peak = [start_rss]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(sample_every):
            peak[0] = max(peak[0], _rss_bytes())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.perf_counter()
    try:
        yield cost
    finally:
        cost.seconds = time.perf_counter() - start
        done.set()
        sampler.join()
        peak[0] = max(peak[0], _rss_bytes())
        cost.peak_memory_mb = (peak[0] - start_rss) / 2**20


@contextmanager
def _measure_cuda(device) -> Iterator[Cost]:
    import torch

    cost = Cost(memory_kind="cuda-allocated")
    torch.cuda.synchronize(device)
    start_bytes = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    try:
        yield cost
    finally:
        torch.cuda.synchronize(device)
        cost.seconds = time.perf_counter() - start
        cost.peak_memory_mb = (torch.cuda.max_memory_allocated(device) - start_bytes) / 2**20
