"""The typed unlearning report and its JSON form.

``report.json`` (schema ``erasekit.unlearning-report/1``)::

    {
      "schema": "erasekit.unlearning-report/1",
      "created_at": ISO-8601, "command": str,
      "provenance": {versions…},
      "scenarios": [                               # one per forget request; the demo has two
        {
          "scenario": {"name", "data": {spec, sha256, n_train, n_test, num_classes, input_shape,
                        preprocessing}, "forget": {spec, kind, size, retain_size, fraction},
                        "model": {architecture…}, "recipe": {…}, "seeds": [..],
                        "original": {"train_acc", "test_acc"}},
          "reference": MethodRow,                   # the retrain reference (gap 0 by definition)
          "methods": [MethodRow, …]                 # "original" (negative control) first
        }
      ]
    }

A ``MethodRow`` holds ``name``, ``role`` (reference | negative_control | method),
``params``, ``seconds`` (mean over seeds), ``speedup`` (reference seconds / method seconds,
same run), ``peak_memory_mb``, ``metrics`` and ``metrics_std`` (``forget_acc``,
``retain_acc``, ``test_acc``, ``mia_efficacy``, ``entropy_member_rate``; all in [0, 1]),
``gap`` (|metric − reference|, averaged over seeds), ``avg_gap`` (mean gap over forget,
retain, test, MIA; lower is better), ``avg_gap_std``, ``runs`` (one record per seed), ``warnings``
(e.g. a diverged method) and ``provenance`` (versions, seeds, data and weight hashes).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

from erasekit.audit.unlearning import UnlearningMetrics

SCHEMA = "erasekit.unlearning-report/1"


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
    role: Literal["reference", "negative_control", "method"]
    params: dict
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
    provenance: dict
    warnings: tuple[str, ...] = ()  # e.g. "seed 1: weights contain NaN/inf: the method diverged"


@dataclass(frozen=True)
class ScenarioInfo:
    name: str
    data: dict
    forget: dict
    model: dict
    recipe: dict
    seeds: tuple[int, ...]
    original: dict  # train/test accuracy of the original model, mean over seeds


@dataclass(frozen=True)
class ScenarioReport:
    scenario: ScenarioInfo
    reference: MethodRow
    methods: tuple[MethodRow, ...]

    def best_method(self) -> MethodRow | None:
        """The approximate method with the smallest Avg. Gap (excluding the negative control)."""
        candidates = [m for m in self.methods if m.role == "method"]
        return min(candidates, key=lambda m: m.avg_gap) if candidates else None


@dataclass(frozen=True)
class Report:
    scenarios: tuple[ScenarioReport, ...]
    provenance: dict
    created_at: str
    command: str = ""
    schema: str = field(default=SCHEMA)

    def to_dict(self) -> dict:
        return {
            "schema": self.schema,
            "created_at": self.created_at,
            "command": self.command,
            "provenance": self.provenance,
            "scenarios": [asdict(s) for s in self.scenarios],
        }
