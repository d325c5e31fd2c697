"""The unlearning pipeline: methods and their exact reference on one or more forget requests.

Per seed: train (or load) the original, retrain the reference for each scenario, run every
method, audit every model on the same splits, then aggregate over seeds into a
:class:`~erasekit.report.unlearning.Report`. Methods never see the audit; the audit never trains.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from torch import nn

from erasekit.audit.metrics import accuracy, predict_logits
from erasekit.audit.per_example import RunConfidences, logit_scaled_confidence, per_example_evidence
from erasekit.audit.tuning import ProxyDeletion, Tuned, proxy_deletion, tune
from erasekit.audit.unlearning import (
    AuditConfig,
    UnlearningMetrics,
    audit_model,
    audit_warnings,
    majority_rate,
    output_change,
)
from erasekit.audit.verdicts import MethodEvidence, VerdictRules, judge
from erasekit.core import progress
from erasekit.core.device import model_device, resolve_device
from erasekit.core.provenance import Provenance, sha256_arrays
from erasekit.core.resources import measure
from erasekit.data.dataset import DataSplits, subset
from erasekit.data.forget import ForgetSpec
from erasekit.models.adapter import as_classifier, unwrap
from erasekit.models.zoo import ModelSpec
from erasekit.report.unlearning import (
    DataInfo,
    ForgetInfo,
    MethodRow,
    OriginalScores,
    Report,
    Role,
    RunRecord,
    ScenarioInfo,
    ScenarioReport,
)
from erasekit.training import Recipe, train
from erasekit.training.cache import ModelCache, ModelKey
from erasekit.unlearn.base import ImportanceCache, UnlearningTask, method_info, unlearn


@dataclass(frozen=True)
class Scenario:
    """A named forget request, e.g. ``Scenario("forget class 3", ForgetSpec.classes(3))``."""

    name: str
    forget: ForgetSpec


@dataclass(frozen=True)
class OriginalModel:
    """Where the original comes from: trained here from ``spec`` (a fresh model per seed), or a
    fixed pretrained ``model`` (then every seed audits the same weights)."""

    spec: ModelSpec
    recipe: Recipe
    pretrained: nn.Module | None = None


@dataclass(frozen=True)
class ExperimentConfig:
    data: DataSplits
    data_spec: str
    original: OriginalModel
    scenarios: tuple[Scenario, ...]
    methods: tuple[str, ...]
    params: dict[str, Any] = field(default_factory=dict)  # method name → its params dataclass
    seeds: int = 1
    audit: AuditConfig = AuditConfig()
    share_importances: bool = True  # reuse SSD's full-data importances across scenarios of a seed
    command: str = ""  # the command line that asked for this run, recorded in the report's provenance
    # `--methods all`: run each method only on the forget requests it is designed for
    fit_methods_to_scenario: bool = False
    verdict_rules: VerdictRules = VerdictRules()
    # the independent retrain that measures the noise floor uses seed + this offset
    noise_floor_seed_offset: int = 10_000
    # trained originals and retrain references on disk, reused across runs (None: train everything here)
    model_cache: ModelCache | None = None
    # > 0: tune every tunable method in this many trials on a proxy deletion (see erasekit.audit.tuning)
    tune: int = 0
    compare_untuned: bool = False  # with tune: also run each method with its given parameters, as "NAME" next to "NAME+tuned"
    per_example_sample: int = 500  # retain and test examples whose per-example divergence (KLOM) is measured
    # where models are trained and unlearned (auto | cpu | cuda | cuda:N | mps); None: a pretrained original stays
    # where it is (and everything follows it), a model trained here is trained on the CPU
    device: str | None = None
    # called with (scenario name, row name, seed, model) for every model a row produces: how a caller keeps one
    on_model: Callable[[str, str, int, nn.Module], None] | None = None
    precision: str = "fp32"  # fp32 | bf16 | fp16 (autocast of every forward)


@dataclass(frozen=True)
class _Outcome:
    name: str
    params: Any
    seconds: float
    peak_memory_mb: float
    metrics: UnlearningMetrics
    original_sha: str
    weights_sha: str
    cache_hits: int
    warnings: tuple[str, ...]
    output_change: float  # largest change of an output probability against the original (forget + test sets)
    confidences: RunConfidences  # logit-scaled confidences, for the per-example evidence
    forget_sha: str  # which examples were forgotten (a random request draws a new set per seed)
    tuning: Tuned | None = None


def run_experiment(config: ExperimentConfig) -> Report:
    """Everything in one pass; returns the typed report (nothing is written here)."""
    seeds = tuple(range(config.seeds))
    data = config.data
    outcomes: dict[str, dict[str, list[_Outcome]]] = {s.name: {} for s in config.scenarios}
    forget_sizes: dict[str, list[int]] = {s.name: [] for s in config.scenarios}
    original_scores: list[tuple[float, float]] = []
    data_sha = data.sha256()  # hashing MNIST takes ~0.4 s: once per experiment, not per report row
    test_sample = np.random.default_rng(0).permutation(len(data.test))[: config.per_example_sample]
    with progress.session():
        for seed in seeds:
            original = _original_model(config, seed, data_sha)
            train_logits, train_labels = predict_logits(original, data.train)
            test_logits, test_labels = predict_logits(original, data.test)
            original_scores.append((accuracy(train_logits, train_labels), accuracy(test_logits, test_labels)))
            shared_cache = ImportanceCache()
            for scenario in config.scenarios:
                cache = shared_cache if config.share_importances else ImportanceCache()
                task = UnlearningTask.create(
                    original,
                    data.train,
                    scenario.forget,
                    recipe=config.original.recipe,
                    num_classes=data.num_classes,
                    seed=seed,
                    cache=cache,
                    model_cache=config.model_cache,
                    precision=config.precision,
                )
                forget_sizes[scenario.name].append(len(task.forget_indices))
                runs = outcomes[scenario.name]
                probe = _Probe(task, config, test_sample)
                original_logits = probe.logits(original)  # once per request, not per method
                proxy: ProxyDeletion | None = None
                for name in run_names(config, scenario):
                    tuned = None
                    if name.endswith(TUNED_SUFFIX):
                        proxy = proxy or proxy_deletion(task, scenario.forget.kind, data.test, config.audit)
                        tuned = tune(
                            task,
                            base_method(name),
                            config.tune,
                            data.test,
                            scenario.forget.kind,
                            config.audit,
                            proxy,
                            defaults=config.params.get(base_method(name)),
                        )
                    runs.setdefault(name, []).append(
                        _run_one(task, scenario.name, name, config, data, original_logits, probe, tuned)
                    )
    reports = tuple(
        _scenario_report(config, scenario, outcomes[scenario.name], forget_sizes[scenario.name], original_scores, seeds, data_sha)
        for scenario in config.scenarios
    )
    return Report(
        scenarios=reports,
        provenance=Provenance.collect(seeds=seeds, data_sha256=data_sha, command=config.command, device=str(run_device(config))),
    )


def run_device(config: ExperimentConfig):
    """The device of this run: the one asked for, else the pretrained original's, else the CPU."""
    if config.device is not None:
        return resolve_device(config.device)
    if config.original.pretrained is not None:
        return model_device(config.original.pretrained)
    return resolve_device("cpu")


def _original_model(config: ExperimentConfig, seed: int, data_sha: str) -> nn.Module:
    device = run_device(config)
    if config.original.pretrained is not None:
        return config.original.pretrained if config.device is None else config.original.pretrained.to(device)
    spec, recipe, data = config.original.spec, config.original.recipe, config.data

    def fit() -> nn.Module:
        network = as_classifier(spec.build(seed=seed).to(device), precision=config.precision)
        return unwrap(train(network, data.train, recipe, seed=seed, description=f"train original (seed {seed})"))

    if config.model_cache is None:
        return fit()
    template = spec.build(seed=seed).to(device)
    key = ModelKey.for_model("original", data_sha, np.arange(len(data.train)), recipe.to_dict(), seed, template)
    return config.model_cache.get_or_train(key, lambda: template, fit).model


TUNED_SUFFIX = "+tuned"


def base_method(name: str) -> str:
    """The registered method behind a row name (``salun+tuned`` → ``salun``)."""
    return name.removesuffix(TUNED_SUFFIX)


def run_names(config: ExperimentConfig, scenario: Scenario) -> tuple[str, ...]:
    """Row names run on ``scenario``: the controls, then each method (``NAME+tuned`` when tuned)."""
    names: list[str] = []
    for name in methods_for(config, scenario):
        tunable = config.tune > 0 and method_info(name).tunable
        if not tunable or config.compare_untuned:
            names.append(name)
        if tunable:
            names.append(name + TUNED_SUFFIX)
    return ("original", "retrain", INDEPENDENT_RETRAIN, *names)


INDEPENDENT_RETRAIN = "independent_retrain"
PER_EXAMPLE_MIN_RUNS = 3  # the NeurIPS 2023 score needs N ≥ 3 runs per side (and is biased low for small N)


def _same_forget_sets(outcomes: Sequence[_Outcome], reference: Sequence[_Outcome]) -> bool:
    """Per-example scores compare the same examples across runs: not so for a random forget set drawn per seed."""
    return len({o.forget_sha for o in (*outcomes, *reference)}) == 1


def methods_for(config: ExperimentConfig, scenario: Scenario) -> tuple[str, ...]:
    """The methods run on ``scenario``: all of them, or (``fit_methods_to_scenario``) those designed for its forget kind."""
    if not config.fit_methods_to_scenario:
        return config.methods
    return tuple(name for name in config.methods if method_info(name).fits(scenario.forget.kind))


class _Probe:
    """The outputs every model of one request is compared on: the forget set, the test set, and a fixed
    sample of the retain set (for the per-example divergence on retained data)."""

    def __init__(self, task: UnlearningTask, config: ExperimentConfig, test_sample: np.ndarray) -> None:
        self.task, self.config, self.test_sample = task, config, test_sample
        positions = np.random.default_rng(0).permutation(len(task.retain_indices))[: config.per_example_sample]
        self.retain_sample = subset(task.train, task.retain_indices[positions])
        self.test_labels = config.data.test.y[test_sample]

    def logits(self, model: nn.Module):
        """(forget logits, forget labels, test logits, retain-sample logits, retain-sample labels) of ``model``."""
        size = self.config.audit.batch_size
        forget_logits, forget_labels = predict_logits(model, self.task.forget_set, size)
        retain_logits, retain_labels = predict_logits(model, self.retain_sample, size)
        return forget_logits, forget_labels, predict_logits(model, self.config.data.test, size)[0], retain_logits, retain_labels

    def confidences(self, logits) -> RunConfidences:
        forget_logits, forget_labels, test_logits, retain_logits, retain_labels = logits
        return RunConfidences(
            forget=logit_scaled_confidence(forget_logits, forget_labels),
            retain_sample=logit_scaled_confidence(retain_logits, retain_labels),
            test_sample=logit_scaled_confidence(test_logits[self.test_sample], self.test_labels),
        )


def _run_one(
    task: UnlearningTask,
    scenario_name: str,
    name: str,
    config: ExperimentConfig,
    data: DataSplits,
    original_logits,
    probe: _Probe,
    tuned: Tuned | None = None,
) -> _Outcome:
    if name == "original":  # the negative control: no unlearning at all
        with measure() as cost:
            model: nn.Module = task.model
        params, sha, hits = None, task.model_sha256, 0
        seconds, peak_memory_mb = cost.seconds, cost.peak_memory_mb
    else:
        if name == INDEPENDENT_RETRAIN:  # the positive control: retrain from another seed; its gap is the noise floor
            result = unlearn(replace(task, seed=task.seed + config.noise_floor_seed_offset), "retrain")
        else:  # a tuned row runs the parameters (and epochs) chosen on the proxy deletion
            result = unlearn(task, base_method(name), tuned.params if tuned else config.params.get(name))
        if config.on_model is not None:
            config.on_model(scenario_name, name, task.seed, result.model)
        model, params, sha, hits = result.model, result.params, result.weights_sha256, result.cache_hits
        seconds, peak_memory_mb = result.seconds, result.peak_memory_mb
    metrics = audit_model(model, data.train, data.test, task.forget_indices, config.audit)
    logits = original_logits if model is task.model else probe.logits(model)
    return _Outcome(
        name=name,
        params=params,
        seconds=seconds,
        peak_memory_mb=peak_memory_mb,
        metrics=metrics,
        original_sha=task.model_sha256,
        weights_sha=sha,
        cache_hits=hits,
        warnings=audit_warnings(model, data.test, config.audit),
        output_change=output_change((logits[0], logits[2]), (original_logits[0], original_logits[2])),
        confidences=probe.confidences(logits),
        forget_sha=sha256_arrays(task.forget_indices),
        tuning=tuned,
    )


def _mean_metrics(values: Sequence[UnlearningMetrics], reduce=np.mean) -> UnlearningMetrics:
    return UnlearningMetrics(**{n: float(reduce([getattr(v, n) for v in values])) for n in UnlearningMetrics.names()})


def _scenario_report(config, scenario, runs, forget_sizes, original_scores, seeds, data_sha: str) -> ScenarioReport:
    data = config.data
    reference_runs = runs["retrain"]
    reference_seconds = float(np.mean([r.seconds for r in reference_runs]))
    reference_metrics = _mean_metrics([r.metrics for r in reference_runs])
    # the noise floor: how far two retrains from different seeds land from each other, per metric
    noise_floor = _mean_metrics([a.metrics.gap_to(b.metrics) for a, b in zip(reference_runs, runs[INDEPENDENT_RETRAIN])])
    majority = majority_rate(data.test.y.numpy())

    def row(name: str) -> MethodRow:
        outcomes = runs[name]
        records = tuple(
            RunRecord(
                seed=seed,
                seconds=o.seconds,
                peak_memory_mb=o.peak_memory_mb,
                metrics=o.metrics,
                gap=o.metrics.gap_to(ref.metrics),
                avg_gap=o.metrics.avg_gap_to(ref.metrics),
                original_weights_sha256=o.original_sha,
                weights_sha256=o.weights_sha,
                cache_hits=o.cache_hits,
                warnings=o.warnings,
            )
            for seed, o, ref in zip(seeds, outcomes, reference_runs)
        )
        seconds = float(np.mean([o.seconds for o in outcomes]))
        role: Role = ROLES.get(name, "method")
        metrics = _mean_metrics([o.metrics for o in outcomes])
        verdict = None
        if role != "reference":
            evidence = MethodEvidence(
                metrics=metrics,
                output_change=float(max(o.output_change for o in outcomes)),
                identical_weights=all(o.weights_sha == o.original_sha for o in outcomes),
                diverged=any(o.warnings for o in outcomes),
            )
            verdict = judge(evidence, reference_metrics, noise_floor, majority, config.verdict_rules)
        per_example = None
        if len(outcomes) >= PER_EXAMPLE_MIN_RUNS and role != "reference" and _same_forget_sets(outcomes, reference_runs):
            per_example = per_example_evidence(
                [o.confidences for o in outcomes],
                [r.confidences for r in reference_runs],
                retain_accuracy=(metrics.retain_acc, reference_metrics.retain_acc),
                test_accuracy=(metrics.test_acc, reference_metrics.test_acc),
            )
        tuning = tuple(o.tuning for o in outcomes if o.tuning is not None)
        tuning_seconds = float(np.mean([t.seconds for t in tuning])) if tuning else None
        return MethodRow(
            name=name,
            role=role,
            params=outcomes[0].params,
            seconds=seconds,
            seconds_std=float(np.std([o.seconds for o in outcomes])),
            speedup=reference_seconds / max(seconds, 1e-9) if role == "method" else (1.0 if role == "reference" else None),
            peak_memory_mb=float(np.max([o.peak_memory_mb for o in outcomes])),
            metrics=metrics,
            metrics_std=_mean_metrics([o.metrics for o in outcomes], np.std),
            gap=_mean_metrics([r.gap for r in records]),
            avg_gap=float(np.mean([r.avg_gap for r in records])),
            avg_gap_std=float(np.std([r.avg_gap for r in records])),
            runs=records,
            verdict=None if verdict is None else verdict.verdict,
            verdict_reason="" if verdict is None else verdict.reason,
            output_change=float(max(o.output_change for o in outcomes)),
            noise_floor=noise_floor if role == "reference" else None,
            per_example=per_example,
            tuning=tuning or None,
            tuning_seconds=tuning_seconds,
            speedup_with_tuning=None if tuning_seconds is None else reference_seconds / max(seconds + tuning_seconds, 1e-9),
            warnings=tuple(f"seed {r.seed}: {w}" for r in records for w in r.warnings),
            provenance=Provenance.collect(
                seeds=seeds,
                data_sha256=data_sha,
                command=config.command,
                before=[o.original_sha for o in outcomes],
                after=[o.weights_sha for o in outcomes],
                device=str(run_device(config)),
            ),
        )

    n_train = len(data.train)
    size = float(np.mean(forget_sizes))
    info = ScenarioInfo(
        name=scenario.name,
        data=DataInfo(
            spec=config.data_spec,
            name=data.name,
            sha256=data_sha,
            n_train=n_train,
            n_test=len(data.test),
            num_classes=data.num_classes,
            input_shape=tuple(data.input_shape),
            preprocessing=data.preprocessing,
        ),
        forget=ForgetInfo(
            spec=scenario.forget.describe(),
            kind=scenario.forget.kind,
            size=size,
            retain_size=n_train - size,
            fraction=size / n_train,
        ),
        model=config.original.spec,
        pretrained=config.original.pretrained is not None,
        recipe=config.original.recipe,
        seeds=seeds,
        original=OriginalScores(
            train_acc=float(np.mean([s[0] for s in original_scores])), test_acc=float(np.mean([s[1] for s in original_scores]))
        ),
    )
    ran = {base_method(name) for name in run_names(config, scenario)}
    skipped = tuple(
        f"{name}: designed for {' / '.join(sorted(method_info(name).forget_kinds))} forgetting, not {scenario.forget.kind} "
        "(name it in --methods to run it anyway)"
        for name in config.methods
        if name not in ran
    )
    methods = tuple(row(name) for name in run_names(config, scenario) if name != "retrain")
    original = methods[0]
    tolerance = config.verdict_rules.tolerance
    discriminates = abs(original.metrics.forget_acc - reference_metrics.forget_acc) > tolerance(noise_floor.forget_acc) or abs(
        original.metrics.mia_efficacy - reference_metrics.mia_efficacy
    ) > tolerance(noise_floor.mia_efficacy)
    return ScenarioReport(scenario=info, reference=row("retrain"), methods=methods, skipped=skipped, discriminates=discriminates)


ROLES: dict[str, Role] = {"retrain": "reference", "original": "negative_control", INDEPENDENT_RETRAIN: "positive_control"}
