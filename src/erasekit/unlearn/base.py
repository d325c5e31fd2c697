"""The unlearning contract: a task, a registry of methods by name, and the typed result.

Every method is ``fn(task, params) -> nn.Module`` registered with :func:`register` in its own
file. :func:`unlearn` is the one entry point: it seeds, times and measures the method,
checks that the caller's model was not touched, and returns an :class:`Unlearned`.
"""

from __future__ import annotations

import copy
import dataclasses
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from erasekit._resources import measure
from erasekit.data.dataset import ArrayDataset, batches, labels_of, subset
from erasekit.data.forget import ForgetSpec
from erasekit.errors import ErasekitError, MethodError, ModelError, suggest
from erasekit.provenance import sha256_arrays, sha256_state
from erasekit.training import Recipe, fresh_init


class ImportanceCache:
    """Reusable per-model statistics (e.g. SSD's full-data Fisher diagonal).

    Keyed by the weights and data hashes, so a cache shared across requests for the same
    model and training set computes each statistic once.
    """

    def __init__(self) -> None:
        self._store: dict[tuple, Any] = {}
        self.hits = 0
        self.misses = 0

    def get_or_compute(self, key: tuple, compute: Callable[[], Any]) -> Any:
        if key in self._store:
            self.hits += 1
        else:
            self.misses += 1
            self._store[key] = compute()
        return self._store[key]


@dataclass(frozen=True, eq=False)
class UnlearningTask:
    """A trained classifier, its training data, and which examples to forget.

    Build with :meth:`create`, which validates the request. ``forget_indices`` are sorted
    positions in ``train``; the retain set is everything else.
    """

    model: nn.Module
    train: Dataset
    forget_indices: np.ndarray
    num_classes: int
    recipe: Recipe
    seed: int = 0
    model_factory: Callable[[], nn.Module] | None = None
    cache: ImportanceCache = field(default_factory=ImportanceCache)

    @classmethod
    def create(
        cls,
        model: nn.Module,
        train: Dataset,
        forget: ForgetSpec | Sequence[int] | np.ndarray,
        recipe: Recipe | None = None,
        num_classes: int | None = None,
        seed: int = 0,
        model_factory: Callable[[], nn.Module] | None = None,
        cache: ImportanceCache | None = None,
    ) -> UnlearningTask:
        """Validate and resolve a request.

        ``forget`` is a :class:`ForgetSpec` (classes, a random fraction drawn with ``seed``,
        or indices) or a sequence of training positions. ``recipe`` must be the recipe that
        trained ``model`` — the retrain reference reuses it.
        """
        if not isinstance(model, nn.Module):
            raise ModelError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        labels = labels_of(train)
        if len(labels) == 0:
            raise ErasekitError("the training set is empty")
        classes = int(num_classes) if num_classes is not None else int(labels.max()) + 1
        spec = forget if isinstance(forget, ForgetSpec) else ForgetSpec.indices(forget)
        forget_indices = spec.resolve(labels, classes, seed=seed)
        check_output_size(model, train, classes)
        return cls(
            model=model,
            train=train,
            forget_indices=forget_indices,
            num_classes=classes,
            recipe=recipe or Recipe(),
            seed=seed,
            model_factory=model_factory,
            cache=cache or ImportanceCache(),
        )

    @cached_property
    def labels(self) -> np.ndarray:
        return labels_of(self.train)

    @cached_property
    def retain_indices(self) -> np.ndarray:
        mask = np.ones(len(self.labels), dtype=bool)
        mask[self.forget_indices] = False
        return np.flatnonzero(mask)

    @cached_property
    def forget_set(self) -> Dataset:
        return subset(self.train, self.forget_indices)

    @cached_property
    def retain_set(self) -> Dataset:
        return subset(self.train, self.retain_indices)

    @cached_property
    def data_sha256(self) -> str:
        if isinstance(self.train, ArrayDataset):
            return self.train.sha256()
        xs, ys = zip(*(batch for batch in batches(self.train, 1024)))
        return sha256_arrays(torch.cat(xs).numpy(), torch.cat(ys).numpy())

    @cached_property
    def model_sha256(self) -> str:
        return sha256_state(self.model)

    def copy_model(self) -> nn.Module:
        """A deep copy of the original model, for methods that start from θ₀."""
        return copy.deepcopy(self.model)

    def fresh_model(self) -> nn.Module:
        """A freshly initialised model of the same architecture (for the retrain reference)."""
        if self.model_factory is not None:
            torch.manual_seed(self.seed)
            return self.model_factory()
        return fresh_init(self.model, self.seed)


def check_output_size(model: nn.Module, train: Dataset, num_classes: int) -> None:
    x, _ = next(batches(train, 2))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(x)
    except Exception as exc:  # a shape mismatch surfaces as any of several torch errors
        raise ModelError(f"the model cannot run on the data (input shape {tuple(x.shape[1:])}): {str(exc).splitlines()[0]}") from None
    finally:
        model.train(was_training)
    if out.ndim != 2 or out.shape[1] != num_classes:
        raise ModelError(
            f"the model outputs shape {tuple(out.shape[1:])} per example but the data has {num_classes} classes; "
            "the last layer must have one output per class"
        )


@dataclass(frozen=True)
class MethodInfo:
    """A registered method: its name, parameter type, function and one-line summary."""

    name: str
    params_type: type
    fn: Callable[[UnlearningTask, Any], nn.Module]
    summary: str
    exact: bool
    # untimed set-up that belongs to the original model, not to the deletion (e.g. SISA's sharded training)
    prepare: Callable[[UnlearningTask, Any], None] | None = None

    def default_params(self):
        return self.params_type()

    def parameter_defaults(self) -> dict[str, Any]:
        return {f.name: f.default for f in dataclasses.fields(self.params_type)}


_REGISTRY: dict[str, MethodInfo] = {}


def register(name: str, params_type: type, exact: bool = False,
             prepare: Callable[[UnlearningTask, Any], None] | None = None):
    """Register an unlearning method under ``name`` (use as a decorator in the method's file).

    ``prepare(task, params)`` runs before the timed method: work that a deployment does once
    when the original is trained (SISA's shard models), cached in ``task.cache``.
    """

    def decorate(fn):
        if name in _REGISTRY:
            raise RuntimeError(f"unlearning method '{name}' is registered twice")
        summary = (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else ""
        _REGISTRY[name] = MethodInfo(name=name, params_type=params_type, fn=fn, summary=summary, exact=exact,
                                     prepare=prepare)
        return fn

    return decorate


def available_methods() -> tuple[str, ...]:
    """Names of all registered methods, exact reference first, then alphabetical."""
    return tuple(sorted(_REGISTRY, key=lambda n: (not _REGISTRY[n].exact, n)))


def method_info(name: str) -> MethodInfo:
    if name not in _REGISTRY:
        raise MethodError(
            f"unknown method '{name}'{suggest(name, _REGISTRY)}; available: {', '.join(available_methods())}"
        )
    return _REGISTRY[name]


def parse_method_list(text: str) -> tuple[str, ...]:
    """``"all"`` or a comma-separated list of method names (validated, order kept)."""
    if text.strip() == "all":
        return tuple(n for n in available_methods() if not method_info(n).exact)
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not names:
        raise MethodError("no methods given; e.g. --methods ssd,salun or --methods all")
    for name in names:
        method_info(name)
    if len(set(names)) != len(names):
        raise MethodError(f"a method is listed twice in '{text}'")
    return names


def _convert(value: str, annotation, where: str):
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        choices = typing.get_args(annotation)
        if value not in choices:
            raise MethodError(f"{where} must be one of {', '.join(map(str, choices))}, got '{value}'")
        return value
    try:
        if annotation is bool:
            if value.lower() in ("1", "true", "yes", "on"):
                return True
            if value.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError
        return annotation(value)
    except ValueError:
        raise MethodError(f"{where} must be {annotation.__name__}, got '{value}'") from None


def parse_param_overrides(assignments: Sequence[str], methods: Sequence[str] | None = None,
                          lookup: Callable[[str], Any] | None = None) -> dict[str, Any]:
    """Turn ``["salun.mask_ratio=0.3", …]`` into typed parameter objects keyed by method name.

    ``lookup`` maps a name to a registry entry with a ``params_type`` (default: unlearning methods).
    """
    lookup = lookup or method_info
    overrides: dict[str, dict[str, Any]] = {}
    for assignment in assignments:
        key, sep, value = assignment.partition("=")
        method, dot, field_name = key.partition(".")
        if not sep or not dot:
            raise MethodError(f"cannot parse --param '{assignment}'; use METHOD.NAME=VALUE, e.g. salun.mask_ratio=0.3")
        info = lookup(method)
        hints = typing.get_type_hints(info.params_type)
        if field_name not in hints:
            known = list(hints)
            raise MethodError(
                f"method '{method}' has no parameter '{field_name}'{suggest(field_name, known)}; "
                f"its parameters: {', '.join(known) or 'none'}"
            )
        if methods is not None and method not in methods:
            raise MethodError(f"--param names method '{method}', which is not among the methods being run")
        overrides.setdefault(method, {})[field_name] = _convert(value.strip(), hints[field_name], key)
    return {name: _build_params(lookup(name).params_type, values) for name, values in overrides.items()}


def _build_params(params_type: type, values: dict[str, Any]):
    try:
        return params_type(**values)
    except ErasekitError:
        raise
    except (TypeError, ValueError) as exc:
        raise MethodError(f"invalid parameters for {params_type.__name__}: {exc}") from None


@dataclass(frozen=True)
class Unlearned:
    """The result of one unlearning run. ``model`` is new; the task's model is untouched."""

    method: str
    params: Any
    model: nn.Module
    seconds: float  # wall-clock time of the method, including any statistics it computed
    peak_memory_mb: float  # peak resident memory above the level at the start, MiB
    seed: int
    original_weights_sha256: str
    weights_sha256: str
    cache_hits: int = 0  # reused statistics (e.g. SSD's full-data importances)


def unlearn(task: UnlearningTask, method: str, params: Any = None) -> Unlearned:
    """Run ``method`` (a registered name) on ``task`` and return the new model with its cost."""
    info = method_info(method)
    if params is None:
        params = info.default_params()
    elif not isinstance(params, info.params_type):
        raise MethodError(
            f"method '{method}' takes {info.params_type.__name__}, got {type(params).__name__}"
        )
    before = task.model_sha256
    if info.prepare is not None:
        info.prepare(task, params)
    hits_before = task.cache.hits
    torch.manual_seed(task.seed)
    with measure() as cost:
        model = info.fn(task, params)
    model.eval()
    if sha256_state(task.model) != before:  # a method bug, never the user's fault
        raise RuntimeError(f"method '{method}' modified the caller's model in place")
    return Unlearned(
        method=method,
        params=params,
        model=model,
        seconds=cost.seconds,
        peak_memory_mb=cost.peak_memory_mb,
        seed=task.seed,
        original_weights_sha256=before,
        weights_sha256=sha256_state(model),
        cache_hits=task.cache.hits - hits_before,
    )
