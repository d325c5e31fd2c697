"""Options and helpers shared by every command family: data, recipe, output, numbers that must be finite.

Nothing heavy is imported at module level, so ``erasekit --help`` stays fast.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console

SUBSET_HELP = "Train on a stratified random subset of N training examples (seed 0); e.g. 10000 for quick MNIST runs."
CLASSIFICATION_DATA_HELP = "digits | mnist:DIR | csv:PATH | parquet:PATH (tables need --target)."


class _Stdout:
    """Rich console bound to the current stdout (wide when piped, so tables do not wrap)."""

    def print(self, *objects, **kwargs) -> None:
        Console(width=None if sys.stdout.isatty() else 160).print(*objects, **kwargs)


out = _Stdout()


class FiniteFloat(click.FloatRange):
    """A float option that must be finite (``nan``/``inf`` are refused where they are parsed)."""

    name = "finite float"

    def convert(self, value: Any, param, ctx) -> float:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


POSITIVE = FiniteFloat(min=0, min_open=True)
NON_NEGATIVE = FiniteFloat(min=0)
FRACTION = FiniteFloat(min=0, max=1, min_open=True, max_open=True)


def data_options(fn, help_text: str = CLASSIFICATION_DATA_HELP, required: bool = True):
    """``--data``, ``--target`` and ``--subset`` of the classification commands."""
    fn = click.option("--subset", type=click.IntRange(min=1), default=None, help=SUBSET_HELP)(fn)
    fn = click.option("--target", default=None, help="Label column of csv:/parquet: data.")(fn)
    return click.option("--data", required=required, default=None, help=help_text)(fn)


def recipe_options(fn, what: str = "Recipe"):
    """``--epochs``, ``--batch-size``, ``--lr`` of the training recipe."""
    fn = click.option(
        "--lr", type=POSITIVE, default=0.05, help=f"{what}: SGD learning rate (cosine decay, momentum 0.9, weight decay 5e-4)."
    )(fn)
    fn = click.option("--batch-size", type=click.IntRange(min=1), default=64, help=f"{what}: minibatch size.")(fn)
    return click.option("--epochs", type=click.IntRange(min=1), default=20, help=f"{what}: training epochs.")(fn)


def device_options(fn):
    """``--device`` and ``--precision``: where models run, and optional mixed precision."""
    fn = click.option(
        "--precision",
        type=click.Choice(["fp32", "bf16", "fp16"]),
        default="fp32",
        help="Compute precision of every forward pass (bf16/fp16: autocast mixed precision).",
    )(fn)
    return click.option(
        "--device",
        "device",
        default="auto",
        help="auto (CUDA when available, else MPS, else CPU) | cpu | cuda | cuda:N | mps.",
    )(fn)


def resolve_device(text: str):
    from erasekit.core.device import resolve_device as resolve

    return resolve(text)


def json_option(fn, what: str = "the result"):
    return click.option("--json", "as_json", is_flag=True, help=f"Print {what} as JSON to stdout.")(fn)


def load_splits(data: str, target: str | None, subset: int | None):
    from erasekit.data import load_data

    splits = load_data(data, target)
    if subset is not None:
        splits = splits.subsample_train(subset)
    return splits


def data_label(data: str, subset: int | None) -> str:
    return data if subset is None else f"{data} (subset {subset})"


def make_recipe(epochs: int, batch_size: int, lr: float):
    from erasekit.training import Recipe

    return Recipe(epochs=epochs, batch_size=batch_size, lr=lr)


def check_architecture(model: str) -> None:
    from erasekit.core.errors import ModelError
    from erasekit.models import ARCHITECTURES

    if model not in ARCHITECTURES:
        raise ModelError(f"unknown --model '{model}'; choose one of {', '.join(ARCHITECTURES)}")


def command_line() -> str:
    from erasekit.core.provenance import command_line as current

    return current()


def write_json(payload: Any) -> None:
    import json

    sys.stdout.write(json.dumps(payload, indent=2) + "\n")


def check_out_dir(out_dir: Path) -> None:
    from erasekit.core.io import check_writable_dir

    check_writable_dir(out_dir)
