"""Helpers shared by the benchmark scripts: machine description and number formatting."""

from __future__ import annotations

import platform
from pathlib import Path


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def fmt(mean: float, std: float) -> str:
    """A fraction as percent, mean ± std."""
    return f"{100 * mean:.2f} ± {100 * std:.2f}"


SUFFIX = {"reference": " (exact)", "negative_control": " (no unlearning)", "positive_control": " (another seed)"}
