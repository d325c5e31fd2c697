"""The typed unlearning report and its JSON form.

``report.json`` (schema ``erasekit.unlearning-report/4``)::

    {
      "schema": "erasekit.unlearning-report/4",
      "provenance": {versions, hardware, created_at, command, seeds, data_sha256},
      "scenarios": [                               # one per forget request; the demo has two
        {
          "scenario": {"name", "data": {spec, sha256, n_train, n_test, num_classes, input_shape,
                        preprocessing}, "forget": {spec, kind, size, retain_size, fraction},
                        "model": {architecture…}, "recipe": {…}, "seeds": [..],
                        "original": {"train_acc", "test_acc"}},
          "reference": MethodRow,                   # the retrain reference (gap 0 by definition)
          "methods": [MethodRow, …]                 # "original" (negative control) first
        }
      ],
      "receipt": DeletionReceipt | null             # with --save-model: the delivered model's record
    }

A ``MethodRow`` holds ``name``, ``role`` (reference | negative_control | method),
``params``, ``seconds`` (mean over seeds), ``speedup`` (reference seconds / method seconds,
same run), ``peak_memory_mb``, ``metrics`` and ``metrics_std`` (``forget_acc``,
``retain_acc``, ``test_acc``, ``mia_efficacy``, ``entropy_member_rate``; all in [0, 1]),
``gap`` (|metric − reference|, averaged over seeds), ``avg_gap`` (mean gap over forget,
retain, test, MIA; lower is better), ``avg_gap_std``, ``runs`` (one record per seed), ``warnings``
(e.g. a diverged method) and ``provenance`` (versions, hardware, seeds, data hash, and the
weight hashes before and after, per seed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from erasekit.audit.per_example import PerExampleEvidence
from erasekit.audit.tuning import Tuned
from erasekit.audit.unlearning import UnlearningMetrics
from erasekit.audit.verdicts import VerdictName
from erasekit.core.provenance import Provenance
from erasekit.models.zoo import ModelSpec
from erasekit.report.receipt import DeletionReceipt
from erasekit.training import Recipe

SCHEMA = "erasekit.unlearning-report/4"
Role = Literal["reference", "negative_control", "positive_control", "method"]


@dataclass(frozen=True)
class RunRecord:
    """One seed of one method."""

    seed: int
    seconds: float
    peak_memory_mb: float
    metrics: UnlearningMetrics
    gap: UnlearningMetrics
    avg_gap: float
    original_weights_sha256: str
    weights_sha256: str
    cache_hits: int = 0
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class MethodRow:
    """One row of the report table, aggregated over seeds (mean; ``*_std`` population std)."""

    name: str
    role: Role
    params: Any  # the method's parameter dataclass, as resolved
    seconds: float
    seconds_std: float
    speedup: float | None  # reference seconds / method seconds; None for the negative control
    peak_memory_mb: float
    metrics: UnlearningMetrics
    metrics_std: UnlearningMetrics
    gap: UnlearningMetrics
    avg_gap: float
    avg_gap_std: float
    runs: tuple[RunRecord, ...]
    provenance: Provenance
    # matches_retrain | under_forgets | over_forgets | no_change | damaged (None for the reference); see erasekit.audit.verdicts
    verdict: VerdictName | None = None
    verdict_reason: str = ""
    output_change: float = 0.0  # largest change of an output probability against the original, forget + test sets
    noise_floor: UnlearningMetrics | None = None  # reference row only: |retrain − independent retrain| per metric
    # per-example evidence against the retrain runs (NeurIPS 2023 score, U-LiRA, KLOM); None with fewer than 3 seeds
    # or a forget set that differs between seeds. The independent_retrain row's values are the ceiling at this N.
    per_example: PerExampleEvidence | None = None
    tuning: tuple[Tuned, ...] | None = None  # one per seed with --tune: the chosen parameters and every trial
    tuning_seconds: float | None = None  # mean tuning time per seed (the proxy retrain not included; see tuning)
    speedup_with_tuning: float | None = None  # reference seconds / (method + tuning seconds)
    warnings: tuple[str, ...] = ()  # e.g. "seed 1: weights contain NaN/inf: the method diverged"


@dataclass(frozen=True)
class DataInfo:
    """The data every model of a scenario was trained and audited on."""

    spec: str
    name: str
    sha256: str
    n_train: int
    n_test: int
    num_classes: int
    input_shape: tuple[int, ...]
    preprocessing: str


@dataclass(frozen=True)
class ForgetInfo:
    """The forget request: ``size`` examples (mean over seeds for random draws), ``fraction`` of the training set."""

    spec: str
    kind: str
    size: float
    retain_size: float
    fraction: float


@dataclass(frozen=True)
class OriginalScores:
    """Accuracy of the original model in [0, 1], mean over seeds."""

    train_acc: float
    test_acc: float


@dataclass(frozen=True)
class ScenarioInfo:
    name: str
    data: DataInfo
    forget: ForgetInfo
    model: ModelSpec  # the architecture of the original
    pretrained: bool  # the original came from a model file (every seed audits the same weights)
    recipe: Recipe  # trains the original and the retrain reference
    seeds: tuple[int, ...]
    original: OriginalScores


@dataclass(frozen=True)
class ScenarioReport:
    """One forget request: the reference, then the negative control (``original``), the positive control
    (``independent_retrain``) and every method run. ``skipped``: methods not run here, with the reason.
    ``discriminates``: the original differs from retrain by more than the noise floor — otherwise this
    scenario cannot tell removal from no removal, whatever the verdicts say."""

    scenario: ScenarioInfo
    reference: MethodRow
    methods: tuple[MethodRow, ...]
    skipped: tuple[str, ...] = ()
    discriminates: bool = True

    def best_method(self) -> MethodRow | None:
        """The fastest approximate method whose verdict is ``matches_retrain``; None when no method matches."""
        candidates = [m for m in self.methods if m.role == "method" and m.verdict == "matches_retrain"]
        return max(candidates, key=lambda m: m.speedup or 0.0) if candidates else None


@dataclass(frozen=True)
class Report:
    """The unlearning report: one :class:`ScenarioReport` per forget request."""

    scenarios: tuple[ScenarioReport, ...]
    provenance: Provenance
    receipt: DeletionReceipt | None = None  # with --save-model: the record of the delivered model
    schema: str = SCHEMA
    template: ClassVar[str] = "unlearning.html"
