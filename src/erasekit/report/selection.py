"""The field-selection reports: one selection (``erasekit select``) and the ERASE benchmark (``select bench``).

``report.json`` of a benchmark (schema ``erasekit.selection-bench/2``) holds the AUC-vs-k
curve of every method and seed, AUKC, precision@k on synthetic data with known relevant
fields, selection cost, the removal-strategy comparison and a per-method ``summary`` (mean
and std over seeds). ``selection.json`` (schema ``erasekit.selection/2``) holds one method's
ranking, kept and removed fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, NamedTuple

from erasekit.core.provenance import Provenance
from erasekit.features.base import Family, FieldSelection
from erasekit.models.ctr import CTRRecipe, CTRScore, CTRSpec

BENCH_SCHEMA = "erasekit.selection-bench/2"
SELECTION_SCHEMA = "erasekit.selection/2"
TABLE_SELECTION_SCHEMA = "erasekit.table-selection/1"


class MeanStd(NamedTuple):
    """Mean and population standard deviation over seeds."""

    mean: float
    std: float


@dataclass(frozen=True)
class CurvePoint:
    k: int
    auc: float  # test AUC of the backbone retrained from scratch on the top-k fields (higher is better)
    logloss: float  # its test logloss (lower is better)


@dataclass(frozen=True)
class RemovalComparison:
    """Test AUC after removing ``fields`` (a method's top-ranked) three ways, plus the references.

    ``full_auc``: all fields. ``mask_auc``: the full model with the fields replaced by the
    missing/mean baseline at inference (cheap, out of distribution). ``roar_auc``: retrained
    without them. ``kar_auc``: retrained on them alone. ``impute_auc``: the full model with
    the fields imputed from the others (noisy, sampled imputation fitted on train; ROAD-style).
    A large gap between ``mask_auc`` and ``roar_auc`` means masking misstates importance.
    """

    method: str
    seed: int
    fields: tuple[str, ...]
    full_auc: float
    mask_auc: float
    roar_auc: float
    kar_auc: float
    impute_auc: float


@dataclass(frozen=True)
class MethodRun:
    selection: FieldSelection
    curve: tuple[CurvePoint, ...]
    aukc: float  # area under the AUC-vs-k curve divided by the k range (mean AUC over the grid; higher is better)
    precision_at_k: dict[int, float] | None  # share of the top-k that are truly relevant fields (synthetic data only)


@dataclass(frozen=True)
class MethodSummary:
    """One method over all seeds (mean ± std): AUKC, AUC and logloss at each k, precision@k, cost."""

    method: str
    family: Family
    aukc: MeanStd
    seconds: MeanStd
    peak_memory_mb: MeanStd
    auc: dict[int, MeanStd]
    logloss: dict[int, MeanStd]
    precision_at_k: dict[int, MeanStd] | None


@dataclass(frozen=True)
class SelectionBenchReport:
    """Everything one ERASE-style run produced. ``backbone_seconds``: one training of the backbone on all fields, per seed."""

    dataset: str
    fields: tuple[str, ...]
    relevant_fields: tuple[str, ...] | None
    ks: tuple[int, ...]
    seeds: tuple[int, ...]
    spec: CTRSpec
    recipe: CTRRecipe
    full_model: dict[int, CTRScore]
    backbone_seconds: dict[int, float]
    runs: tuple[MethodRun, ...]
    removals: tuple[RemovalComparison, ...]
    summary: tuple[MethodSummary, ...]
    data_sha256: str
    provenance: Provenance
    schema: str = BENCH_SCHEMA
    template: ClassVar[str] = "selection.html"


@dataclass(frozen=True)
class SelectionReport:
    """One method's selection on one table, as written by ``erasekit select`` (``selection.json``)."""

    data: str
    target: str
    data_sha256: str
    selection: FieldSelection
    provenance: Provenance
    schema: str = SELECTION_SCHEMA
    template: ClassVar[str | None] = None
    json_name: ClassVar[str] = "selection.json"


@dataclass(frozen=True)
class HeldOutScore:
    """The downstream model's held-out score (accuracy, or R² for regression; higher is better)."""

    columns: int
    score: float


@dataclass(frozen=True)
class RandomBaseline:
    """The same downstream model on ``draws`` random choices of k columns: mean and spread."""

    columns: int
    mean: float
    std: float
    draws: int
    scores: tuple[float, ...]


@dataclass(frozen=True)
class TableSelectionReport:
    """One method on a plain table (``erasekit select`` on csv/parquet): the ranking, the kept columns, and
    what they are worth — the downstream model's held-out score with them, with every column, and with
    random columns of the same number."""

    data: str
    target: str
    task: str  # binary | multiclass | regression
    classes: tuple[str, ...]
    metric: str  # accuracy | r2
    downstream: str  # gbdt | mlp
    n_train: int
    n_test: int
    selection: FieldSelection
    at_k: HeldOutScore
    all_columns: HeldOutScore
    random_k: RandomBaseline
    # better_than_random | no_better_than_random: read against the random draws' spread (the noise floor)
    verdict: str
    verdict_reason: str
    selector_complete: bool  # False when a budgeted method stopped early (its ranking is the result so far)
    data_sha256: str
    provenance: Provenance
    schema: str = TABLE_SELECTION_SCHEMA
    template: ClassVar[str | None] = None
    json_name: ClassVar[str] = "selection.json"
