"""Typed method parameters with their ranges declared once, next to the field.

A parameter dataclass subclasses :class:`Params` and annotates constrained numbers with a
:class:`Range`, e.g. ``lr: Annotated[float, POSITIVE] = 0.01``. Constructing it checks that
every number is finite and inside its range, so the Python API, ``--param METHOD.NAME=VALUE``
and every other parser share one check.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from erasekit.core.errors import MethodError


@dataclass(frozen=True)
class Range:
    """An interval for a numeric parameter; ``None`` leaves that side open-ended."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def contains(self, value: float) -> bool:
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return not (self.high is not None and (value >= self.high if self.high_open else value > self.high))

    def describe(self) -> str:
        if self.high is None:
            return f"{'>' if self.low_open else '≥'} {self.low:g}"
        if self.low is None:
            return f"{'<' if self.high_open else '≤'} {self.high:g}"
        return f"in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"


POSITIVE = Range(0.0, low_open=True)
NON_NEGATIVE = Range(0.0)
AT_LEAST_ONE = Range(1.0)
FRACTION = Range(0.0, 1.0, low_open=True)  # (0, 1]
OPEN_FRACTION = Range(0.0, 1.0, low_open=True, high_open=True)  # (0, 1)
UNIT_INTERVAL = Range(0.0, 1.0)  # [0, 1]


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_number(value: Any, where: str, allowed: Range | None = None, error: type[Exception] = MethodError) -> None:
    """Raise ``error`` unless ``value`` is a finite number inside ``allowed``."""
    if not is_number(value):
        return
    if not math.isfinite(value):
        raise error(f"{where} must be a finite number, got {value}")
    if allowed is not None and not allowed.contains(value):
        raise error(f"{where} must be {allowed.describe()}, got {value}")


_RANGES: dict[type, dict[str, Range]] = {}


def field_ranges(params_type: type) -> dict[str, Range]:
    """The :class:`Range` declared on each field of a parameter dataclass (fields without one are omitted).

    A subclass that only changes a field's default (``lr: float = 0.013``) keeps the range its
    base class declared.
    """
    if params_type in _RANGES:
        return _RANGES[params_type]
    ranges: dict[str, Range] = {}
    for klass in reversed(params_type.__mro__):
        own = inspect.get_annotations(klass)
        if not own:
            continue
        hints = typing.get_type_hints(klass, include_extras=True)
        for name in own:
            for extra in getattr(hints.get(name), "__metadata__", ()):
                if isinstance(extra, Range):
                    ranges[name] = extra
    _RANGES[params_type] = ranges
    return ranges


def validate(params: Any, error: type[Exception] = MethodError) -> None:
    """Check every numeric field of a dataclass instance: finite, and inside its declared range."""
    ranges = field_ranges(type(params))
    for item in dataclasses.fields(params):
        check_number(getattr(params, item.name), f"{type(params).__name__}.{item.name}", ranges.get(item.name), error)


@dataclass(frozen=True)
class Params:
    """Base of every method's parameter dataclass: numbers are finite and inside their declared ranges.

    ``SEARCH_SPACE`` (field → candidate values) is what tuning tries; empty means not tunable.
    """

    SEARCH_SPACE: ClassVar[Mapping[str, Sequence[Any]]] = {}

    def __post_init__(self) -> None:
        validate(self)


def field_types(params_type: type) -> dict[str, Any]:
    """Field name → type (``Annotated`` wrappers removed), for parsing command-line values."""
    return typing.get_type_hints(params_type)
