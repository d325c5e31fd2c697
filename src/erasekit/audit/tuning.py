"""Tuning an unlearning method against the reference, without retraining for the real request.

Approximate methods swing between forgetting nothing and wrecking the model with their learning
rate, epochs and mask ratio. :func:`tune` picks them on a *proxy deletion*: a request of the same
kind and size drawn from the retain set (a random slice for random or index requests, another
class for class requests), whose exact retrain is trained once (and kept in the task's model
cache when it has one). Every trial runs the method on the proxy and is scored by its Avg. Gap to
that retrain; the best trial's parameters are used on the real request. Epochs are cut short by a
reference-free signal, during trials and on the real request alike:

- random or index requests: the forget set's confidences look like held-out data (a two-sample
  Kolmogorov–Smirnov test of the logit-scaled confidence does not reject at 5 %);
- class requests: forget accuracy is down to what a model that never saw the class gets (the
  proxy retrain's accuracy on its own deleted class, plus one point).
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from torch import nn
from torch.utils.data import Dataset

from erasekit.audit.metrics import accuracy, predict_logits
from erasekit.audit.per_example import logit_scaled_confidence
from erasekit.audit.unlearning import AuditConfig, UnlearningMetrics, audit_model
from erasekit.core import progress
from erasekit.core.errors import MethodError
from erasekit.data.dataset import subset
from erasekit.unlearn.base import UnlearningTask, method_info, unlearn

KS_CRITICAL = 1.358  # the two-sample Kolmogorov–Smirnov constant c(α) at α = 0.05
CLASS_LEVEL_MARGIN = 0.01
HELD_OUT_SAMPLE = 2000
PROXY_SEED_OFFSET = 20_000


@dataclass(frozen=True)
class ProxyDeletion:
    """The proxy request tuning scores trials on, and its exact retrain's audit numbers."""

    task: UnlearningTask
    kind: str  # the kind of request it stands in for: class, random or indices
    description: str
    reference: UnlearningMetrics
    retrain_seconds: float  # what training the proxy retrain cost (also when it came from the cache)
    retrain_cached: bool
    class_level: float  # the proxy retrain's accuracy on its own deleted class (class requests only)


@dataclass(frozen=True)
class TuningTrial:
    """One candidate on the proxy: its parameters as given, the epochs it ran before the stop signal
    (None for methods without epochs), and its Avg. Gap to the proxy retrain (lower is better)."""

    params: Any
    epochs_run: int | None
    stopped_early: bool
    proxy_avg_gap: float
    proxy_gap: UnlearningMetrics
    seconds: float


@dataclass(frozen=True)
class Tuned:
    """The chosen parameters (``epochs`` set to where the best trial stopped) and every trial.

    ``seconds``: the whole tuning run without the proxy retrain, whose cost is
    ``proxy_retrain_seconds`` (paid once per original and request kind, shared by all methods).
    """

    method: str
    params: Any
    budget: int
    trials: tuple[TuningTrial, ...]
    proxy: str
    proxy_avg_gap: float
    proxy_retrain_seconds: float
    proxy_retrain_cached: bool
    seconds: float
    signal: str


def stop_signal(kind: str) -> str:
    """The reference-free early-stopping rule used for a request of ``kind``, in words."""
    if kind == "class":
        return "forget accuracy at most a never-trained-on-it model's level + 1 pt"
    return "forget confidences indistinguishable from held-out (two-sample KS, 5 %)"


def _ks_statistic(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.sort(a), np.sort(b)
    grid = np.concatenate([a, b])
    return float(
        np.max(np.abs(np.searchsorted(a, grid, side="right") / len(a) - np.searchsorted(b, grid, side="right") / len(b)))
    )


def stop_rule(
    forget_set: Dataset, held_out: Dataset, kind: str, class_level: float, batch_size: int = 1024
) -> Callable[[nn.Module], bool]:
    """The reference-free signal as a callable for :attr:`UnlearningTask.stop_when`."""
    if kind == "class":
        return lambda model: accuracy(*predict_logits(model, forget_set, batch_size)) <= class_level + CLASS_LEVEL_MARGIN
    sample = subset(held_out, np.random.default_rng(0).permutation(len(held_out))[:HELD_OUT_SAMPLE])  # type: ignore[arg-type]

    def confidences_match(model: nn.Module) -> bool:
        forget = logit_scaled_confidence(*predict_logits(model, forget_set, batch_size))
        reference = logit_scaled_confidence(*predict_logits(model, sample, batch_size))
        n, m = len(forget), len(reference)
        return _ks_statistic(forget, reference) <= KS_CRITICAL * np.sqrt((n + m) / (n * m))

    return confidences_match


class _CountingRule:
    """Wraps a stop rule to count the epochs a run completed and whether it stopped early."""

    def __init__(self, rule: Callable[[nn.Module], bool]) -> None:
        self.rule = rule
        self.calls = 0
        self.fired = False

    def __call__(self, model: nn.Module) -> bool:
        self.calls += 1
        self.fired = bool(self.rule(model))
        return self.fired


def proxy_deletion(task: UnlearningTask, kind: str, held_out: Dataset, audit: AuditConfig = AuditConfig()) -> ProxyDeletion:
    """Draw the proxy request for ``task`` (same kind and size, from the retain set) and retrain it once."""
    rng = np.random.default_rng(task.seed + PROXY_SEED_OFFSET)
    labels = task.labels
    if kind == "class":
        forgotten = set(np.unique(labels[task.forget_indices]).tolist())
        candidates = [c for c in np.unique(labels[task.retain_indices]).tolist() if c not in forgotten]
        if not candidates:
            raise MethodError("tuning a class request needs another class in the retain set to use as the proxy")
        chosen = rng.choice(candidates, size=min(len(forgotten), len(candidates)), replace=False)
        proxy = np.flatnonzero(np.isin(labels, chosen))
        description = f"class {', '.join(str(int(c)) for c in sorted(chosen))} ({len(proxy)} examples)"
    else:
        size = len(task.forget_indices)
        if size >= len(task.retain_indices):
            raise MethodError("tuning needs a retain set larger than the forget set to draw the proxy request from")
        proxy = np.sort(rng.choice(task.retain_indices, size=size, replace=False))
        description = f"random slice of the retain set ({size} examples)"
    proxy_task = replace(task, forget_indices=proxy, stop_when=None)
    retrained = unlearn(proxy_task, "retrain")
    reference = audit_model(retrained.model, task.train, held_out, proxy, audit)
    return ProxyDeletion(
        task=proxy_task,
        kind=kind,
        description=description,
        reference=reference,
        retrain_seconds=retrained.seconds,
        retrain_cached=retrained.cache_hits > 0,
        class_level=reference.forget_acc if kind == "class" else 0.0,
    )


def candidates(space: Mapping[str, Sequence[Any]], defaults: Any, budget: int, seed: int) -> list[Any]:
    """The defaults first, then up to ``budget − 1`` distinct draws from ``space`` (field → candidate values)."""
    if not space:
        raise MethodError(f"{type(defaults).__name__} declares no search space: this method has nothing to tune")
    names = sorted(space)
    grid = list(itertools.product(*(space[name] for name in names)))
    order = np.random.default_rng(seed).permutation(len(grid))
    chosen = [defaults]
    for index in order:
        if len(chosen) >= budget:
            break
        try:
            candidate = replace(defaults, **dict(zip(names, grid[index], strict=True)))
        except MethodError:  # an invalid combination (e.g. SCRUB's max_steps > epochs)
            continue
        if candidate not in chosen:
            chosen.append(candidate)
    return chosen


def tune(
    task: UnlearningTask,
    method: str,
    budget: int,
    held_out: Dataset,
    kind: str,
    audit: AuditConfig = AuditConfig(),
    proxy: ProxyDeletion | None = None,
    defaults: Any = None,
) -> Tuned:
    """Choose ``method``'s parameters for ``task`` in ``budget`` trials on a proxy deletion.

    ``held_out``: data none of the models trained on (the test set). ``kind``: the request's
    kind (``class``, ``random`` or ``indices``). ``proxy``: a :class:`ProxyDeletion` to share
    between methods (drawn here when None). ``defaults``: the first candidate (the method's
    defaults when None).
    """
    if budget < 1:
        raise MethodError(f"the tuning budget is a number of trials ≥ 1, got {budget}")
    info = method_info(method)
    if info.exact:
        raise MethodError(f"'{method}' is exact: it has nothing to tune")
    proxy = proxy or proxy_deletion(task, kind, held_out, audit)
    started = time.perf_counter()
    defaults = defaults if defaults is not None else info.default_params()
    has_epochs = any(f.name == "epochs" for f in dataclasses.fields(defaults))
    trials = []
    pool = candidates(info.search_space, defaults, budget, seed=task.seed)
    with progress.step(f"tune {method}", len(pool)) as advance:
        for params in pool:
            rule = _CountingRule(stop_rule(proxy.task.forget_set, held_out, kind, proxy.class_level, audit.batch_size))
            result = unlearn(replace(proxy.task, stop_when=rule), method, params)
            metrics = audit_model(result.model, task.train, held_out, proxy.task.forget_indices, audit)
            trials.append(
                TuningTrial(
                    params=params,
                    epochs_run=rule.calls if has_epochs else None,
                    stopped_early=rule.fired,
                    proxy_avg_gap=metrics.avg_gap_to(proxy.reference),
                    proxy_gap=metrics.gap_to(proxy.reference),
                    seconds=result.seconds,
                )
            )
            advance(1)
    best = min(trials, key=lambda trial: trial.proxy_avg_gap)
    chosen = replace(best.params, epochs=best.epochs_run) if best.epochs_run else best.params
    return Tuned(
        method=method,
        params=chosen,
        budget=budget,
        trials=tuple(trials),
        proxy=proxy.description,
        proxy_avg_gap=best.proxy_avg_gap,
        proxy_retrain_seconds=proxy.retrain_seconds,
        proxy_retrain_cached=proxy.retrain_cached,
        seconds=time.perf_counter() - started,
        signal=stop_signal(kind),
    )


def with_stop_signal(task: UnlearningTask, held_out: Dataset, proxy: ProxyDeletion, batch_size: int = 1024) -> UnlearningTask:
    """``task`` with the reference-free early stop set, as tuned runs use it on the real request."""
    return replace(task, stop_when=stop_rule(task.forget_set, held_out, proxy.kind, proxy.class_level, batch_size))


def tunable_methods(methods: Sequence[str]) -> tuple[str, ...]:
    """The approximate methods among ``methods`` that declare a search space."""
    return tuple(name for name in methods if method_info(name).tunable)
