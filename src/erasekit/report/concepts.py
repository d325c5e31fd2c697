"""The concept-erasure report: probes before/after with CIs, verdict, utility, edit size.

``report.json`` (schema ``erasekit.concept-report/2``): ``source`` (embeddings or table,
sizes, SHA-256), ``concept`` (what was erased, its kind), ``method`` and ``params``,
``fit_seconds``, ``probes`` (one row per representation × probe: ``score``, ``ci_low``,
``ci_high``, ``baseline``, ``metric``, ``leaks``), ``verdicts`` per representation ("linearly
guarded" only when the linear probe's 95 % CI covers the baseline), ``utility`` (main-task
accuracy per representation, tables only), ``edit`` (mean squared edit size; held-out
cross-covariance norm before/after) and ``provenance``.
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
    schema: str = SCHEMA
    template: ClassVar[str] = "concepts.html"
