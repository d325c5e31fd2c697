"""The unlearning contract: a task, a registry of methods by name, and the typed result.

Every method is ``fn(task, params) -> nn.Module`` registered with :func:`register` in its own
file. :func:`unlearn` is the one entry point: it seeds (without touching the caller's global
RNG), times and measures the method, checks that the caller's model was not touched, and
returns an :class:`Unlearned`.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, ClassVar, cast

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from erasekit.core.device import DeviceError, model_device
from erasekit.core.errors import DataError, ErasekitError, MethodError, ModelError
from erasekit.core.params import AT_LEAST_ONE, NON_NEGATIVE, POSITIVE, Params, field_types
from erasekit.core.provenance import sha256_state
from erasekit.core.registry import Registry
from erasekit.core.resources import measure
from erasekit.core.rng import seeded
from erasekit.data.dataset import as_dataset, batches, dataset_sha256, labels_of, subset
from erasekit.data.forget import ForgetSpec
from erasekit.models.adapter import Classifier, LogitsExtractor, as_classifier, unwrap
from erasekit.training import Recipe, fresh_init
from erasekit.training.cache import ModelCache, ModelKey


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
    positions in ``train``; the retain set is everything else. ``model`` is the user's model
    wrapped in a :class:`~erasekit.models.adapter.Classifier` (device, dict inputs, logits);
    every method works where that model is.
    """

    model: Classifier
    train: Dataset
    forget_indices: np.ndarray
    num_classes: int
    recipe: Recipe
    seed: int = 0
    model_factory: Callable[[], nn.Module] | None = None
    cache: ImportanceCache = field(default_factory=ImportanceCache)
    # trained models on disk: an exact method's result (the retrain reference) is trained once per key
    model_cache: ModelCache | None = None
    # early stopping: fine-tuning-style methods ask this after every epoch (with the model in eval mode)
    # and stop when it returns True; tuning sets it to a reference-free signal
    stop_when: Callable[[nn.Module], bool] | None = None
    # the caller passed a bare module: results hand back a bare module of the same type
    return_bare: bool = True

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
        model_cache: ModelCache | Path | str | None = None,
        logits: LogitsExtractor | None = None,
        precision: str | None = None,
        label_key: str | None = None,
        input_keys: Sequence[str] | None = None,
    ) -> UnlearningTask:
        """Validate and resolve a request.

        ``forget`` is a :class:`ForgetSpec` (classes, a random fraction drawn with ``seed``,
        or indices) or a sequence of training positions. ``recipe`` must be the recipe that
        trained ``model`` — the retrain reference reuses it. ``model_cache`` (a folder or a
        :class:`~erasekit.training.cache.ModelCache`) keeps the retrain reference on disk, so a
        second request for the same retained examples, recipe and seed does not retrain.

        Your own model and data: ``model`` may live on any device (every method runs there) and
        return a tensor, a dict or a ``ModelOutput`` (``logits=`` extracts the class scores
        otherwise); ``precision="bf16"|"fp16"`` runs forwards under autocast. ``train`` may be a
        ``Dataset`` of ``(inputs, label)`` pairs or dicts (``label_key``/``input_keys`` name the
        fields), a ``DataLoader`` or any iterable of batches.
        """
        if not isinstance(model, nn.Module):
            raise ModelError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        return_bare = not isinstance(model, Classifier)
        model = as_classifier(model, logits, precision)
        train = as_dataset(train, label_key, input_keys)
        labels = labels_of(train)
        if len(labels) == 0:
            raise ErasekitError("the training set is empty")
        classes = int(num_classes) if num_classes is not None else int(labels.max()) + 1
        outside = labels[(labels < 0) | (labels >= classes)]
        if len(outside):
            raise DataError(
                f"{len(outside)} training label(s) are outside the declared {classes} classes 0..{classes - 1} "
                f"(e.g. {int(outside[0])}); labels must be class indices — fix num_classes or the labels"
            )
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
            model_cache=model_cache if model_cache is None or isinstance(model_cache, ModelCache) else ModelCache(model_cache),
            return_bare=return_bare,
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
        return dataset_sha256(self.train)

    @property
    def device(self) -> torch.device:
        """Where the model is, and so where every method of this task runs."""
        return model_device(self.model)

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The loss the original was trained with (the recipe's; cross-entropy by default)."""
        return self.recipe.loss_value(logits, labels)

    def optimizer(self, model: nn.Module, lr: float, momentum: float, weight_decay: float) -> torch.optim.Optimizer:
        """The recipe's optimiser over ``model`` at a method's own learning rate (SGD settings apply to the built-in SGD)."""
        return self.recipe.make_optimizer(model.parameters(), lr, momentum, weight_decay)

    @cached_property
    def model_sha256(self) -> str:
        return sha256_state(self.model)

    def should_stop(self, model: nn.Module) -> bool:
        """Ask :attr:`stop_when` about ``model`` (in eval mode, gradients off); False when no rule is set."""
        if self.stop_when is None:
            return False
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                return bool(self.stop_when(model))
        finally:
            model.train(was_training)

    def model_key(self, role: str) -> ModelKey:
        """The cache key of a model trained from this task's architecture on its retain set (e.g. the retrain reference)."""
        return ModelKey.for_model(role, self.data_sha256, self.retain_indices, self.recipe.to_dict(), self.seed, self.model)

    def copy_model(self) -> Classifier:
        """A deep copy of the original model, for methods that start from θ₀."""
        return copy.deepcopy(self.model)

    def fresh_model(self, seed: int | None = None) -> Classifier:
        """A freshly initialised model of the same architecture, on the model's device (for the retrain reference)."""
        seed = self.seed if seed is None else seed
        if self.model_factory is not None:
            with seeded(seed):
                built = self.model_factory()
            return as_classifier(unwrap(built).to(self.device), self.model.extract_logits, self.model.precision)
        return cast(Classifier, fresh_init(self.model, seed))

    def deliverable(self, model: nn.Module) -> nn.Module:
        """``model`` in the form the caller gave: their bare module unless they passed a Classifier."""
        return unwrap(model) if self.return_bare else model


def check_output_size(model: nn.Module, train: Dataset, num_classes: int) -> None:
    """Run the model on two examples: it must run where it is and give one score per class."""
    network = as_classifier(model)
    x, _ = next(batches(as_dataset(train), 2))
    was_training = network.training
    network.eval()
    try:
        with torch.no_grad():
            out = network(x)
    except (DeviceError, ModelError):
        raise
    except Exception as exc:  # a shape mismatch surfaces as any of several torch errors
        shape = tuple(x.shape[1:]) if torch.is_tensor(x) else {k: tuple(v.shape[1:]) for k, v in x.items() if torch.is_tensor(v)}
        raise ModelError(f"the model cannot run on the data (input shape {shape}): {str(exc).splitlines()[0]}") from None
    finally:
        network.train(was_training)
    if out.ndim != 2 or out.shape[1] != num_classes:
        raise ModelError(
            f"the model outputs shape {tuple(out.shape[1:])} per example but the data has {num_classes} classes; "
            "the last layer must have one output per class"
        )


FORGET_KINDS = ("class", "random", "indices")


@dataclass(frozen=True)
class SGDParams(Params):
    """Shared optimiser fields of the fine-tuning-style methods (SGD with momentum).

    Defaults are the SalUn/Sparse reference code's: 10 epochs, lr 0.01, momentum 0.9,
    weight decay 5e-4, batch 64. Each method's subclass documents where it differs.
    """

    epochs: Annotated[int, AT_LEAST_ONE] = 10
    lr: Annotated[float, POSITIVE] = 0.01
    momentum: Annotated[float, NON_NEGATIVE] = 0.9
    weight_decay: Annotated[float, NON_NEGATIVE] = 5e-4
    batch_size: Annotated[int, AT_LEAST_ONE] = 64

    # what tuning tries; early stopping ends a run before `epochs` when its signal is met
    SEARCH_SPACE: ClassVar[Mapping[str, Sequence[Any]]] = {"lr": (0.001, 0.003, 0.01, 0.03, 0.1), "epochs": (1, 2, 3, 5, 10)}


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
    # the forget requests the method is designed for; `--methods all` runs it only on those
    forget_kinds: frozenset[str] = frozenset(FORGET_KINDS)
    # the result depends only on (data, retained examples, recipe, seed, architecture): kept in the task's model cache
    cacheable: bool = False

    def fits(self, forget_kind: str) -> bool:
        return forget_kind in self.forget_kinds

    def default_params(self):
        return self.params_type()

    @property
    def search_space(self) -> Mapping[str, Sequence[Any]]:
        """Candidate values per parameter for tuning (empty: nothing to tune)."""
        return getattr(self.params_type, "SEARCH_SPACE", {})

    @property
    def tunable(self) -> bool:
        return not self.exact and bool(self.search_space)

    def parameter_defaults(self) -> dict[str, Any]:
        return {f.name: f.default for f in dataclasses.fields(self.params_type)}

    def parameter_types(self) -> dict[str, Any]:
        return field_types(self.params_type)

    def make_params(self, values: dict[str, Any]):
        return self.params_type(**values)


METHODS: Registry[MethodInfo] = Registry("unlearning method", order=lambda info: not info.exact, example="ssd,salun")


def register(
    name: str,
    params_type: type,
    exact: bool = False,
    prepare: Callable[[UnlearningTask, Any], None] | None = None,
    forget_kinds: Sequence[str] = FORGET_KINDS,
    cacheable: bool = False,
):
    """Register an unlearning method under ``name`` (use as a decorator in the method's file).

    ``prepare(task, params)`` runs before the timed method: work that a deployment does once
    when the original is trained (SISA's shard models), cached in ``task.cache``.
    ``forget_kinds``: the requests the method is designed for (``class``, ``random``, ``indices``).
    ``cacheable``: the method trains a model from scratch on the retain set (the retrain reference),
    so its result can be kept in the task's model cache.
    """
    unknown = set(forget_kinds) - set(FORGET_KINDS)
    if unknown:
        raise RuntimeError(f"method '{name}' names unknown forget kinds {sorted(unknown)}")

    def decorate(fn):
        summary = (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else ""
        METHODS.add(
            MethodInfo(
                name=name,
                params_type=params_type,
                fn=fn,
                summary=summary,
                exact=exact,
                prepare=prepare,
                forget_kinds=frozenset(forget_kinds),
                cacheable=cacheable,
            )
        )
        return fn

    return decorate


def available_methods() -> tuple[str, ...]:
    """Names of all registered methods, exact reference first, then alphabetical."""
    return METHODS.names()


def method_info(name: str) -> MethodInfo:
    return METHODS.get(name)


def parse_method_list(text: str) -> tuple[str, ...]:
    """``"all"`` (every approximate method) or a comma-separated list of method names (validated, order kept)."""
    return METHODS.parse_list(text, everything=lambda info: not info.exact)


def parse_param_overrides(assignments: Sequence[str], methods: Sequence[str] | None = None) -> dict[str, Any]:
    """Turn ``["salun.mask_ratio=0.3", …]`` into typed parameter objects keyed by method name."""
    return METHODS.parse_params(assignments, methods)


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
        raise MethodError(f"method '{method}' takes {info.params_type.__name__}, got {type(params).__name__}")
    before = task.model_sha256
    if info.prepare is not None:
        info.prepare(task, params)
    hits_before = task.cache.hits
    if info.cacheable and task.model_cache is not None:
        # a cache hit reports what training the entry cost, so speed-ups against it stay honest
        cached = task.model_cache.get_or_train(
            task.model_key(f"{method}:{params!r}"), task.fresh_model, lambda: _run_seeded(info, task, params)
        )
        model, seconds, peak_memory_mb, hits = cached.model, cached.seconds, cached.peak_memory_mb, int(cached.hit)
    else:
        with measure(device=task.device) as cost:
            model = _run_seeded(info, task, params)
        seconds, peak_memory_mb, hits = cost.seconds, cost.peak_memory_mb, 0
    model.eval()
    if sha256_state(task.model) != before:  # a method bug, never the user's fault
        raise RuntimeError(f"method '{method}' modified the caller's model in place")
    return Unlearned(
        method=method,
        params=params,
        model=task.deliverable(model),
        seconds=seconds,
        peak_memory_mb=peak_memory_mb,
        seed=task.seed,
        original_weights_sha256=before,
        weights_sha256=sha256_state(model),
        cache_hits=task.cache.hits - hits_before + hits,
    )


def _run_seeded(info: MethodInfo, task: UnlearningTask, params: Any) -> nn.Module:
    with seeded(task.seed):
        return as_classifier(info.fn(task, params), task.model.extract_logits, task.model.precision)
