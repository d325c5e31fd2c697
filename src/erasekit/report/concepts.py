"""The concept-erasure report: probes before/after with CIs, verdict, utility, edit size.

``report.json`` (schema ``erasekit.concept-report/2``): ``source`` (embeddings or table,
sizes, SHA-256), ``concept`` (what was erased, its kind), ``method`` and ``params``,
``fit_seconds``, ``probes`` (one row per representation × probe: ``score``, ``ci_low``,
``ci_high``, ``baseline``, ``metric``, ``leaks``, ``ignored_columns``, ``evidence``), ``verdicts``
per representation ("linear leakage" when the linear probe's 95 % CI lies above the baseline,
"linearly guarded" when it is at or below it; "not assessed" when the probe's positive control on
the original data failed), ``utility`` (main-task accuracy per representation, tables only),
``edit`` (mean squared edit size; held-out cross-covariance norm before/after), ``notes``
(probes not used as evidence, floating-point residue, utility lost) and ``provenance``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from erasekit.audit.probes import ProbeResult
from erasekit.core.provenance import Provenance

SCHEMA = "erasekit.concept-report/2"


@dataclass(frozen=True)
class ProbeRow:
    representation: str  # e.g. "original", "erased", "dropped", "dropped+leace"
    target: str  # the concept or removed column probed
    result: ProbeResult
    # False when the same probe found nothing on the original data (its positive control failed): not evidence
    evidence: bool = True


@dataclass(frozen=True)
class ConceptSource:
    """What was erased from: ``rows`` × ``width`` embeddings, or a table's ``columns``; split sizes and content hash."""

    kind: Literal["embeddings", "table"]
    rows: int
    width: int
    n_train: int
    n_test: int
    sha256: str
    columns: tuple[str, ...] = ()
    target: str = ""  # the table's main-task label column (utility is measured on it)


@dataclass(frozen=True)
class ConceptInfo:
    """The concept: its name, kind (binary | multiclass | numeric | columns), classes or removed columns."""

    name: str
    kind: str
    classes: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    proxies: str = ""  # tables: "leace" (proxies erased too) or "none" (columns dropped only)


@dataclass(frozen=True)
class ConceptReport:
    source: ConceptSource
    concept: ConceptInfo
    method: str
    params: Any  # the eraser's parameter dataclass, or None
    fit_seconds: float
    probes: tuple[ProbeRow, ...]
    verdicts: dict[str, str]  # representation → verdict
    utility: dict[str, float]  # representation → held-out main-task accuracy (tables)
    edit: dict[str, float]  # edit-size and cross-covariance measurements by name
    provenance: Provenance
    # findings beside the verdicts: probes not used as evidence, floating-point residue, utility lost
    notes: tuple[str, ...] = ()
    schema: str = SCHEMA
    template: ClassVar[str] = "concepts.html"
