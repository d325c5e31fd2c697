"""Wall-clock seconds and peak resident memory of a block of work."""

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
    peak_memory_mb: float = 0.0  # peak resident set size above the level at the start


@contextmanager
def measure(sample_every: float = 0.005) -> Iterator[Cost]:
    """Time a block and sample its resident memory from a background thread."""
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
