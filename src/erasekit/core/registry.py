"""One registry for every method family, and one parser for method lists and ``--param`` values.

A family makes one :class:`Registry` of its info records; each method file registers itself
with a decorator. :meth:`Registry.parse_list` reads ``--methods a,b`` / ``all`` and
:meth:`Registry.parse_params` reads ``--param METHOD.NAME=VALUE`` into typed parameter
objects, checking every number once, where it is parsed (finite, inside its declared range).
"""

from __future__ import annotations

import importlib
import math
import pkgutil
import types
import typing
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Generic, Protocol, TypeVar

from erasekit.core.errors import ErasekitError, MethodError, suggest


class MethodRecord(Protocol):
    """What a registry entry must carry: its name and how to make its parameters."""

    @property
    def name(self) -> str: ...

    def parameter_types(self) -> dict[str, Any]:
        """Field name → type of every parameter that ``--param`` may set."""
        ...

    def make_params(self, values: dict[str, Any]) -> Any:
        """Parameters with ``values`` overriding the defaults (validated)."""
        ...


Record = TypeVar("Record", bound=MethodRecord)


class Registry(Generic[Record]):
    """Name → record for one family, e.g. ``Registry("unlearning method")``."""

    def __init__(self, kind: str, order: Callable[[Record], Any] | None = None, example: str = "a,b") -> None:
        self.kind = kind
        self._order = order
        self._example = example
        self._records: dict[str, Record] = {}

    def add(self, record: Record) -> Record:
        if record.name in self._records:
            raise RuntimeError(f"{self.kind} '{record.name}' is registered twice")
        self._records[record.name] = record
        return record

    def names(self) -> tuple[str, ...]:
        """Every registered name, in the family's display order (alphabetical by default)."""
        records = sorted(self._records.values(), key=lambda r: r.name)
        if self._order is not None:
            records = sorted(records, key=self._order)
        return tuple(r.name for r in records)

    def __contains__(self, name: object) -> bool:
        return name in self._records

    def __iter__(self) -> Iterator[Record]:
        return (self._records[n] for n in self.names())

    def get(self, name: str) -> Record:
        if name not in self._records:
            raise MethodError(f"unknown {self.kind} '{name}'{suggest(name, self._records)}; available: {', '.join(self.names())}")
        return self._records[name]

    def parse_list(self, text: str, everything: Callable[[Record], bool] = lambda _: True) -> tuple[str, ...]:
        """``"all"`` (the records ``everything`` accepts) or a comma-separated list of names, validated, order kept."""
        if text.strip() == "all":
            return tuple(r.name for r in self if everything(r))
        names = tuple(n.strip() for n in text.split(",") if n.strip())
        if not names:
            raise MethodError(f"no {self.kind}s given; e.g. --methods {self._example} or --methods all")
        for name in names:
            self.get(name)
        if len(set(names)) != len(names):
            raise MethodError(f"a {self.kind} is listed twice in '{text}'")
        return names

    def parse_params(self, assignments: Sequence[str], methods: Sequence[str] | None = None) -> dict[str, Any]:
        """``["salun.mask_ratio=0.3", …]`` → typed parameter objects keyed by method name."""
        values: dict[str, dict[str, Any]] = {}
        for assignment in assignments:
            key, sep, value = assignment.partition("=")
            method, dot, name = key.partition(".")
            if not sep or not dot:
                raise MethodError(f"cannot parse --param '{assignment}'; use METHOD.NAME=VALUE, e.g. {self._param_example()}")
            record = self.get(method)
            types = record.parameter_types()
            if name not in types:
                raise MethodError(
                    f"{self.kind} '{method}' has no parameter '{name}'{suggest(name, types)}; "
                    f"its parameters: {', '.join(types) or 'none'}"
                )
            if methods is not None and method not in methods:
                raise MethodError(f"--param names {self.kind} '{method}', which is not among the methods being run")
            values.setdefault(method, {})[name] = parse_value(value.strip(), types[name], key)
        return {method: make_params(self.get(method), given) for method, given in values.items()}

    def _param_example(self) -> str:
        for record in self:
            for name in record.parameter_types():
                return f"{record.name}.{name}=VALUE"
        return "method.name=VALUE"


def import_method_modules(package: str, path: Sequence[str], infrastructure: frozenset[str] = frozenset()) -> None:
    """Import every module of a method package (each registers itself), so a new method is one new file."""
    for module in pkgutil.iter_modules(path):
        if module.name not in infrastructure and not module.name.startswith("_"):
            importlib.import_module(f"{package}.{module.name}")


def make_params(record: MethodRecord, values: dict[str, Any]) -> Any:
    try:
        return record.make_params(values)
    except ErasekitError:
        raise
    except (TypeError, ValueError) as exc:
        raise MethodError(f"invalid parameters for {record.name}: {exc}") from None


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def parse_value(text: str, annotation: Any, where: str) -> Any:
    """Convert one command-line value to ``annotation`` (bool, int, float, str, Literal, or X | None).

    Numbers must be finite: ``nan`` and ``inf`` are refused here, before any work starts.
    """
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        choices = typing.get_args(annotation)
        if text not in choices:
            raise MethodError(f"{where} must be one of {', '.join(map(str, choices))}, got '{text}'")
        return text
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(annotation) if a is not type(None)]
        if text.lower() == "none" and len(options) < len(typing.get_args(annotation)):
            return None
        annotation = options[0]
    try:
        if annotation is bool:
            if text.lower() in _TRUE:
                return True
            if text.lower() in _FALSE:
                return False
            raise ValueError
        value = annotation(text)
    except (TypeError, ValueError):
        name = getattr(annotation, "__name__", str(annotation))
        raise MethodError(f"{where} must be {name}, got '{text}'") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise MethodError(f"{where} must be a finite number, got '{text}'")
    return value
