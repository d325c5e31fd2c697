"""Naming the forget set: whole classes, a seeded random fraction, or explicit indices."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from erasekit.core.errors import ForgetSetError


@dataclass(frozen=True)
class ForgetSpec:
    """Which training examples to forget.

    Build with :meth:`classes`, :meth:`random` or :meth:`indices`, or parse the CLI form
    (``class=3``, ``class=3,5``, ``random=0.1``, ``random=0.1,draw=0``, ``indices=FILE``) with
    :meth:`parse`. Indices are positions in the training dataset. A random request draws a new set
    per run seed unless ``draw_seed`` fixes the draw (then every seed forgets the same examples,
    which per-example evidence needs).
    """

    kind: Literal["class", "random", "indices"]
    class_ids: tuple[int, ...] = ()
    fraction: float = 0.0
    index_list: tuple[int, ...] = ()
    draw_seed: int | None = None

    @classmethod
    def classes(cls, *class_ids: int) -> ForgetSpec:
        return cls(kind="class", class_ids=tuple(int(c) for c in class_ids))

    @classmethod
    def random(cls, fraction: float, draw_seed: int | None = None) -> ForgetSpec:
        return cls(kind="random", fraction=float(fraction), draw_seed=None if draw_seed is None else int(draw_seed))

    @classmethod
    def indices(cls, indices) -> ForgetSpec:
        """Training positions to forget; they must be whole numbers (1.7 is refused, never rounded)."""
        values = np.asarray(indices).ravel()
        if values.dtype.kind not in "iub":
            try:
                numbers = values.astype(np.float64)
            except (TypeError, ValueError):
                raise ForgetSetError(f"forget indices must be integers, got {values[:3].tolist()} …") from None
            fractional = ~np.isfinite(numbers) | (np.mod(numbers, 1) != 0)
            if fractional.any():
                raise ForgetSetError(
                    f"forget index {values[fractional][0].item()!r} is not a whole number; give integer positions"
                )
        return cls(kind="indices", index_list=tuple(int(i) for i in values))

    def describe(self) -> str:
        if self.kind == "class":
            return "class=" + ",".join(str(c) for c in self.class_ids)
        if self.kind == "random":
            return f"random={self.fraction:g}" + ("" if self.draw_seed is None else f",draw={self.draw_seed}")
        return f"indices ({len(self.index_list)} examples)"

    @staticmethod
    def parse(text: str) -> ForgetSpec:
        """Parse ``class=3[,5]``, ``random=0.1[,draw=SEED]`` or ``indices=FILE`` (FILE: integers, any separator)."""
        kind, sep, value = text.partition("=")
        if not sep or not value:
            raise ForgetSetError(f"cannot parse forget spec '{text}'; use class=3, random=0.1 or indices=FILE")
        if kind == "class":
            try:
                return ForgetSpec.classes(*(int(v) for v in value.split(",")))
            except ValueError:
                raise ForgetSetError(f"class ids must be integers, got '{value}'; e.g. class=3 or class=3,5") from None
        if kind == "random":
            fraction_text, _, draw = value.partition(",")
            try:
                fraction = float(fraction_text)
            except ValueError:
                raise ForgetSetError(f"random fraction must be a number in (0, 1), got '{fraction_text}'") from None
            if not draw:
                return ForgetSpec.random(fraction)
            name, _, seed_text = draw.partition("=")
            if name != "draw" or not seed_text.isdigit():
                raise ForgetSetError(f"cannot parse '{draw}' in '{text}'; fix the draw with random=0.1,draw=0 (a seed ≥ 0)")
            return ForgetSpec.random(fraction, draw_seed=int(seed_text))
        if kind == "indices":
            return ForgetSpec.indices(read_index_file(Path(value)))
        raise ForgetSetError(f"unknown forget kind '{kind}'; use class=…, random=… or indices=FILE")

    def resolve(self, labels: np.ndarray, num_classes: int, seed: int = 0) -> np.ndarray:
        """Sorted training positions to forget; validates the request against the data."""
        n = len(labels)
        if self.kind == "class":
            if not self.class_ids:
                raise ForgetSetError("no class given to forget; e.g. class=3")
            for c in self.class_ids:
                if not 0 <= c < num_classes:
                    raise ForgetSetError(f"class {c} does not exist: the data has classes 0..{num_classes - 1}")
                if not np.any(labels == c):
                    raise ForgetSetError(f"class {c} has no training examples; nothing to forget")
            chosen = np.flatnonzero(np.isin(labels, self.class_ids))
        elif self.kind == "random":
            if not 0.0 < self.fraction < 1.0:
                raise ForgetSetError(f"random fraction must be in (0, 1), got {self.fraction:g}")
            size = int(round(self.fraction * n))
            if size == 0:
                raise ForgetSetError(f"random={self.fraction:g} of {n} training examples selects none; use a larger fraction")
            draw = seed if self.draw_seed is None else self.draw_seed
            chosen = np.sort(np.random.default_rng(draw).choice(n, size=size, replace=False))
        else:
            chosen = np.asarray(self.index_list, dtype=np.int64)
            if chosen.size == 0:
                raise ForgetSetError("the forget set is empty; give at least one index")
            bad = chosen[(chosen < 0) | (chosen >= n)]
            if bad.size:
                raise ForgetSetError(f"forget index {int(bad[0])} is out of range: the training set has indices 0..{n - 1}")
            unique, counts = np.unique(chosen, return_counts=True)
            if np.any(counts > 1):
                raise ForgetSetError(f"forget index {int(unique[counts > 1][0])} is listed more than once; remove duplicates")
            chosen = unique
        if chosen.size == 0:
            raise ForgetSetError("the forget set is empty")
        if chosen.size >= n:
            raise ForgetSetError(
                "the forget set is the whole training set; nothing would be left to retain — train a new model instead"
            )
        return chosen.astype(np.int64)


def read_request_file(path: Path) -> list[tuple[list[int], str]]:
    """One deletion request per line: ids separated by spaces or commas, optionally ``| reason``.

    ``#`` before any ``|`` starts a comment (a line starting with ``#`` is skipped); after ``|`` it is part of the reason.
    """
    text = _read_text(path)
    batch: list[tuple[list[int], str]] = []
    for line_number, line in enumerate(text.splitlines(), start=1):
        if line.lstrip().startswith("#"):
            continue
        ids_text, _, reason = line.partition("|")  # a reason may contain '#' ("request #4411"); ids may not
        tokens = ids_text.split("#", 1)[0].replace(",", " ").split()
        if not tokens:
            if reason.strip():
                raise ForgetSetError(f"{path}:{line_number}: a request names no example ids")
            continue
        batch.append(([_index(path, line_number, token) for token in tokens], reason.strip()))
    if not batch:
        raise ForgetSetError(f"{path} holds no requests; write one per line: ids separated by spaces, then '| reason'")
    return batch


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ForgetSetError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ForgetSetError(f"{path} is not a text file of integer indices (it is not UTF-8 text)") from None


def _index(path: Path, line_number: int, token: str) -> int:
    try:
        value = int(token)
    except ValueError:
        raise ForgetSetError(f"{path}:{line_number}: '{token}' is not an integer index") from None
    if not 0 <= value < 2**63:
        raise ForgetSetError(f"{path}:{line_number}: index {token} is out of range (indices are row numbers ≥ 0)")
    return value


def read_index_file(path: Path) -> np.ndarray:
    """Integers separated by whitespace or commas; ``#`` starts a comment."""
    text = _read_text(path)
    tokens = []
    for line_number, line in enumerate(text.splitlines(), start=1):
        for token in line.split("#", 1)[0].replace(",", " ").split():
            tokens.append(_index(path, line_number, token))
    return np.asarray(tokens, dtype=np.int64)
