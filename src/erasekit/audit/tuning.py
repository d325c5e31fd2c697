"""Tuning an unlearning method against the reference, without retraining for the real request.

Approximate methods swing between forgetting nothing and wrecking the model with their learning
rate, epochs and mask ratio. :func:`tune` picks them on a *proxy deletion*: a request of the same
kind and size drawn from the retain set (a random slice for random or index requests, another
class for class requests), whose exact retrain is trained once (and kept in the task's model
cache when it has one). Every trial runs the method on the proxy and is scored by its Avg. Gap to
that retrain after every epoch; a trial ends one epoch (``patience``) after a reference-free
signal first fires, since methods run past that point over-forget:

- random requests: the forget set's mean true-label confidence has come down to the held-out
  set's (after retraining, forgotten examples are just unseen examples);
- class requests: forget accuracy is down to what a model that never saw the class gets (the
  proxy retrain's accuracy on its own deleted class, plus one point);
- index requests: no signal — hand-picked examples (e.g. mislabelled ones) need not look like
  held-out data after retraining, so no reference-free level exists; trials run all their epochs.
  Their proxy is a random slice, so tuning assumes the request behaves like a random one.

The two best trials are rerun at their best epoch with another seed, and each keeps the worse of
its two results, so a choice that only worked by luck is caught. The chosen parameters are the
trial and epoch with the smallest such Avg. Gap among those that did not damage the proxy model
(retain or test accuracy more than 5 points below its retrain); the real request then runs them
with that many epochs. SGD learning rates above the recipe's (when the original was trained
with SGD) are not tried: fine-tuning faster than the model was trained wrecks it in some seeds.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from torch import nn
from torch.utils.data import Dataset

from erasekit.audit.metrics import accuracy, predict_logits, true_label_confidence
from erasekit.audit.unlearning import AuditConfig, UnlearningMetrics, audit_model
from erasekit.core import progress
from erasekit.core.errors import MethodError
from erasekit.data.dataset import subset
from erasekit.unlearn.base import SGDParams, UnlearningTask, method_info, unlearn

CLASS_LEVEL_MARGIN = 0.01
TUNING_SHADOW_SIZE = 500
DAMAGE_MARGIN = 0.05
CONFIRMATIONS = 2  # the best trials rerun with another seed before one is chosen
CONFIRM_SEED_OFFSET = 7  # a trial more than this below the proxy retrain's retain or test accuracy damaged the model
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
    """One candidate on the proxy: its parameters as given, the epochs it ran (None for methods without
    epochs), whether the reference-free signal ended it early, and its Avg. Gap to the proxy retrain at
    its best epoch (lower is better)."""

    params: Any
    epochs_run: int | None
    best_epoch: int | None  # the epoch whose proxy score the trial is judged by (the chosen parameters use it)
    stopped_early: bool
    proxy_avg_gap: float
    proxy_gap: UnlearningMetrics
    seconds: float
    retain_drop: float = 0.0  # proxy retrain's retain accuracy minus the trial's (positive = the trial lost accuracy)
    test_drop: float = 0.0
    # for the best trials: the worse of its gap and a rerun's with another seed (drops are the worse of both, too)
    confirmed_avg_gap: float | None = None


@dataclass(frozen=True)
class Tuned:
    """The chosen parameters (``epochs`` set to the best trial's best epoch) and every trial.

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
    if kind == "random":
        return "the forget set's mean confidence down to the held-out set's"
    return "none for index requests (no reference-free level; the proxy is a random slice)"


def stop_rule(
    forget_set: Dataset, held_out: Dataset, kind: str, class_level: float, batch_size: int = 1024
) -> Callable[[nn.Module], bool] | None:
    """The reference-free signal as a callable for :attr:`UnlearningTask.stop_when` (None: no early stop)."""
    if kind == "class":
        return lambda model: accuracy(*predict_logits(model, forget_set, batch_size)) <= class_level + CLASS_LEVEL_MARGIN
    if kind != "random":
        return None
    sample = subset(held_out, np.random.default_rng(0).permutation(len(held_out))[:HELD_OUT_SAMPLE])  # type: ignore[arg-type]

    def confidence_down_to_held_out(model: nn.Module) -> bool:
        forget = true_label_confidence(*predict_logits(model, forget_set, batch_size))
        reference = true_label_confidence(*predict_logits(model, sample, batch_size))
        return float(forget.mean()) <= float(reference.mean()) + 1e-9  # the same examples in another order sum differently

    return confidence_down_to_held_out


class _TrialMonitor:
    """Called after every epoch of a trial: scores the model on the proxy, and ends the trial
    ``patience`` epochs after the reference-free signal first fired (beyond it, methods over-forget)."""

    def __init__(
        self, rule: Callable[[nn.Module], bool] | None, evaluate: Callable[[nn.Module], UnlearningMetrics], patience: int
    ) -> None:
        self.rule, self.evaluate, self.patience = rule, evaluate, patience
        self.history: list[UnlearningMetrics] = []
        self.fired_at: int | None = None

    def __call__(self, model: nn.Module) -> bool:
        self.history.append(self.evaluate(model))
        if self.fired_at is None and self.rule is not None and self.rule(model):
            self.fired_at = len(self.history)
        return self.fired_at is not None and len(self.history) - self.fired_at >= self.patience


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
    patience: int = 1,
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
    # tuning scores many models: a smaller attack set keeps each proxy audit fast
    quick = replace(audit, shadow_size=min(audit.shadow_size or TUNING_SHADOW_SIZE, TUNING_SHADOW_SIZE))
    rule = stop_rule(proxy.task.forget_set, held_out, kind, proxy.class_level, audit.batch_size)

    def evaluate(model: nn.Module) -> UnlearningMetrics:
        return audit_model(model, task.train, held_out, proxy.task.forget_indices, quick)

    trials = []
    pool = candidates(search_space(info.search_space, defaults, task), defaults, budget, seed=task.seed)
    with progress.step(f"tune {method}", len(pool)) as advance:
        for params in pool:
            monitor = _TrialMonitor(rule, evaluate, patience)
            result = unlearn(replace(proxy.task, stop_when=monitor), method, params)
            history = monitor.history or [evaluate(result.model)]  # methods without epochs are scored once
            trials.append(
                _best_epoch(
                    params,
                    history,
                    proxy.reference,
                    has_epochs=bool(monitor.history),
                    fired=monitor.fired_at,
                    seconds=result.seconds,
                )
            )
            advance(1)
    trials = _confirm(trials, method, replace(proxy.task, seed=task.seed + CONFIRM_SEED_OFFSET), evaluate, proxy.reference)
    best = min(trials, key=_choice_key)
    return Tuned(
        method=method,
        params=_with_epochs(best.params, best.best_epoch),
        budget=budget,
        trials=tuple(trials),
        proxy=proxy.description,
        proxy_avg_gap=best.proxy_avg_gap if best.confirmed_avg_gap is None else best.confirmed_avg_gap,
        proxy_retrain_seconds=proxy.retrain_seconds,
        proxy_retrain_cached=proxy.retrain_cached,
        seconds=time.perf_counter() - started,
        signal=stop_signal(kind),
    )


def search_space(space: Mapping[str, Sequence[Any]], defaults: Any, task: UnlearningTask) -> Mapping[str, Sequence[Any]]:
    """The method's space, with SGD learning rates capped at the recipe's when the original was trained with SGD:
    fine-tuning faster than the model was trained tends to wreck it in some seeds and not others."""
    if not (isinstance(defaults, SGDParams) and task.recipe.optimizer == "sgd" and "lr" in space):
        return space
    capped = [lr for lr in space["lr"] if lr <= task.recipe.lr]
    return {**space, "lr": capped or [min(space["lr"])]}


def _confirm(
    trials: list[TuningTrial],
    method: str,
    proxy_task: UnlearningTask,
    evaluate: Callable[[nn.Module], UnlearningMetrics],
    reference: UnlearningMetrics,
) -> list[TuningTrial]:
    """Rerun the best ``CONFIRMATIONS`` trials (at their best epoch) with another seed: a choice that only worked
    by luck, or that wrecks the model in some seeds, is caught before it reaches the real request."""
    ranked = sorted(range(len(trials)), key=lambda i: _choice_key(trials[i]))[:CONFIRMATIONS]
    confirmed = list(trials)
    for index in ranked:
        trial = trials[index]
        metrics = evaluate(unlearn(proxy_task, method, _with_epochs(trial.params, trial.best_epoch)).model)
        retain_drop, test_drop = _damage(metrics, reference)
        confirmed[index] = replace(
            trial,
            confirmed_avg_gap=max(trial.proxy_avg_gap, metrics.avg_gap_to(reference)),
            retain_drop=max(trial.retain_drop, retain_drop),
            test_drop=max(trial.test_drop, test_drop),
        )
    return confirmed


def _choice_key(trial: TuningTrial) -> tuple[bool, bool, float]:
    """Undamaged first, confirmed next, then the smaller (worst-case) proxy Avg. Gap."""
    damaged = trial.retain_drop > DAMAGE_MARGIN or trial.test_drop > DAMAGE_MARGIN
    gap = trial.proxy_avg_gap if trial.confirmed_avg_gap is None else trial.confirmed_avg_gap
    return damaged, trial.confirmed_avg_gap is None, gap


def _damage(metrics: UnlearningMetrics, reference: UnlearningMetrics) -> tuple[float, float]:
    return reference.retain_acc - metrics.retain_acc, reference.test_acc - metrics.test_acc


def _best_epoch(
    params: Any,
    history: list[UnlearningMetrics],
    reference: UnlearningMetrics,
    has_epochs: bool,
    fired: int | None,
    seconds: float,
) -> TuningTrial:
    """The trial's best stopping point: the epoch with the smallest proxy Avg. Gap among those that did not damage the model."""
    intact = [i for i, m in enumerate(history) if max(_damage(m, reference)) <= DAMAGE_MARGIN]
    index = min(intact or range(len(history)), key=lambda i: history[i].avg_gap_to(reference))
    metrics = history[index]
    retain_drop, test_drop = _damage(metrics, reference)
    return TuningTrial(
        params=params,
        epochs_run=len(history) if has_epochs else None,
        best_epoch=index + 1 if has_epochs else None,
        stopped_early=fired is not None,
        proxy_avg_gap=metrics.avg_gap_to(reference),
        proxy_gap=metrics.gap_to(reference),
        seconds=seconds,
        retain_drop=retain_drop,
        test_drop=test_drop,
    )


def _with_epochs(params: Any, epochs: int | None) -> Any:
    """``params`` cut to ``epochs`` (keeping SCRUB's max_steps ≤ epochs)."""
    if epochs is None:
        return params
    changes: dict[str, Any] = {"epochs": epochs}
    if hasattr(params, "max_steps"):
        changes["max_steps"] = min(params.max_steps, epochs)
    return replace(params, **changes)


def tunable_methods(methods: Sequence[str]) -> tuple[str, ...]:
    """The approximate methods among ``methods`` that declare a search space."""
    return tuple(name for name in methods if method_info(name).tunable)
