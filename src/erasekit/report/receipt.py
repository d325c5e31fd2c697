"""The deletion receipt: what a compliance reviewer asks for after a model was changed to forget data.

One JSON record per delivered model: the request id, which examples were forgotten (their ids
and a SHA-256 anyone can recompute), the method and its resolved parameters, the hashes of the
original and the new weights, the audit's verdict against retraining, and when it happened.

The ids' hash is ``sha256`` of the sorted ids written in decimal, one per line, each line ending
in ``\\n`` — ``sort -n ids.txt | sha256sum`` gives the same value.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from erasekit.core.provenance import library_versions

RECEIPT_FORMAT = "erasekit.deletion-receipt/1"


def ids_sha256(ids: Sequence[int]) -> str:
    """SHA-256 of the sorted ids, one decimal id per line (see the module docstring)."""
    text = "".join(f"{int(i)}\n" for i in sorted(int(i) for i in ids))
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class ForgottenExamples:
    """Which examples the new model forgot. ``ids`` are the data's own row numbers (not training positions)."""

    request: str  # the request as given, e.g. "class 3" or "indices (4 examples)"
    kind: str  # class | random | indices
    count: int
    ids: tuple[int, ...]
    ids_sha256: str


@dataclass(frozen=True)
class DeletionReceipt:
    """The record of one deletion; written as ``receipt.json`` next to the new weights and into report.json."""

    request_id: str
    forgotten: ForgottenExamples
    method: str
    params: Any  # the method's resolved parameters (after tuning, when tuned)
    seed: int
    data_spec: str
    data_sha256: str
    original_weights_sha256: str
    new_weights_sha256: str
    new_weights_file: str  # the safetensors file, relative to the receipt
    new_weights_file_sha256: str
    verdict: str  # the audit's verdict against the retrain reference
    verdict_reason: str
    report: str  # the report that holds the evidence
    started_at: str
    finished_at: str
    device: str
    versions: dict[str, str]
    format: str = RECEIPT_FORMAT


def forgotten_examples(request: str, kind: str, ids: Sequence[int]) -> ForgottenExamples:
    ordered = tuple(sorted(int(i) for i in ids))
    return ForgottenExamples(request=request, kind=kind, count=len(ordered), ids=ordered, ids_sha256=ids_sha256(ordered))


def make_receipt(**fields: Any) -> DeletionReceipt:
    """A receipt with this process's library versions."""
    return DeletionReceipt(versions=library_versions(), **fields)
