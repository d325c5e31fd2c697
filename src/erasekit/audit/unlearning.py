"""Audit of an unlearned model against the exact reference: accuracies, two membership attacks, gaps
(the conventions of Jia et al., NeurIPS 2023 and Fan et al., "SalUn", ICLR 2024)."""

from __future__ import annotations

from collections.abc import Sequence, Sized
from dataclasses import dataclass, fields
from typing import cast

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from erasekit.audit.metrics import (
    accuracy,
    non_finite_fraction,
    predict_logits,
    prediction_entropy,
    true_label_confidence,
)
from erasekit.audit.mia import entropy_member_rate, mia_efficacy
from erasekit.data.dataset import subset

GAP_METRICS = ("forget_acc", "retain_acc", "test_acc", "mia_efficacy")


@dataclass(frozen=True)
class AuditConfig:
    """How the audit samples its attack sets.

    ``shadow_size``: the SVC attack trains on the first ``n`` retain examples (members) and
    the first ``n`` test examples (non-members), ``n = min(|test|, |retain|, shadow_size)``.
    The SalUn convention uses the whole test set; the cap keeps the RBF-SVC fit fast on
    MNIST-sized test sets (its cost grows quadratically). ``None`` removes the cap.
    """

    shadow_size: int | None = 2000
    seed: int = 0
    batch_size: int = 1024


@dataclass(frozen=True)
class UnlearningMetrics:
    """Audit numbers for one model, all in [0, 1].

    - ``forget_acc``/``retain_acc``/``test_acc``: accuracy on D_f, D_r and the test set.
    - ``mia_efficacy``: SVC attack's non-member rate on D_f (higher = looks more forgotten).
    - ``entropy_member_rate``: entropy-LogReg attack's member rate on D_f (lower = more forgotten).
    For every metric the target is the retrain reference's value, not 0 or 1.
    """

    forget_acc: float
    retain_acc: float
    test_acc: float
    mia_efficacy: float
    entropy_member_rate: float

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    def as_dict(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in self.names()}

    def gap_to(self, reference: UnlearningMetrics) -> UnlearningMetrics:
        """|self − reference| per metric."""
        return UnlearningMetrics(**{n: abs(getattr(self, n) - getattr(reference, n)) for n in self.names()})

    def avg_gap_to(self, reference: UnlearningMetrics) -> float:
        """Mean |gap| over forget, retain and test accuracy and MIA-efficacy (SalUn's Avg. Gap)."""
        gap = self.gap_to(reference)
        return float(np.mean([getattr(gap, n) for n in GAP_METRICS]))


def output_change(logits: Sequence[torch.Tensor], original_logits: Sequence[torch.Tensor]) -> float:
    """The largest change of any output probability, ``max |softmax(new) − softmax(original)|``, over paired logits
    of the same examples (e.g. the forget set and the test set).

    0 when the model behaves exactly like the original; ``inf`` when either output is NaN/inf.
    """
    largest = 0.0
    for new, old in zip(logits, original_logits, strict=True):
        new, old = new.double(), old.double()
        if len(new) == 0:
            continue
        if not (torch.isfinite(new).all() and torch.isfinite(old).all()):
            return float("inf")
        largest = max(largest, float((torch.softmax(new, dim=1) - torch.softmax(old, dim=1)).abs().max()))
    return largest


def majority_rate(labels: np.ndarray) -> float:
    """Accuracy of always predicting the most common label, in [0, 1]."""
    if len(labels) == 0:
        return 0.0
    return float(np.bincount(np.asarray(labels, dtype=np.int64)).max() / len(labels))


def audit_warnings(model: nn.Module, test: Dataset, config: AuditConfig = AuditConfig()) -> tuple[str, ...]:
    """Problems that make a model's numbers suspect, e.g. a diverged method (NaN weights)."""
    warnings = []
    if not all(torch.isfinite(p).all() for p in model.parameters()):
        warnings.append("weights contain NaN/inf: the method diverged (lower its lr or epochs)")
    broken = non_finite_fraction(predict_logits(model, test, config.batch_size)[0])
    if broken > 0:
        warnings.append(f"outputs are NaN/inf on {100 * broken:.1f}% of test examples; they count as wrong and unconfident")
    return tuple(warnings)


def audit_model(
    model: nn.Module,
    train: Dataset,
    test: Dataset,
    forget_indices: np.ndarray,
    config: AuditConfig = AuditConfig(),
) -> UnlearningMetrics:
    """Accuracies and both population attacks for one model and one forget set.

    NaN/inf outputs never crash the audit: they count as wrong predictions with zero
    true-label confidence and maximal entropy (see :func:`audit_warnings` to flag them).
    """
    mask = np.ones(len(cast(Sized, train)), dtype=np.bool_)
    mask[forget_indices] = False
    retain_indices = np.flatnonzero(mask)
    forget_logits, forget_labels = predict_logits(model, subset(train, forget_indices), config.batch_size)
    retain_logits, retain_labels = predict_logits(model, subset(train, retain_indices), config.batch_size)
    test_logits, test_labels = predict_logits(model, test, config.batch_size)

    shadow = min(len(test_labels), len(retain_labels), config.shadow_size or len(test_labels))
    efficacy = mia_efficacy(
        true_label_confidence(retain_logits[:shadow], retain_labels[:shadow]),
        true_label_confidence(test_logits[:shadow], test_labels[:shadow]),
        true_label_confidence(forget_logits, forget_labels),
    )
    member_rate = entropy_member_rate(
        prediction_entropy(retain_logits),
        prediction_entropy(test_logits),
        prediction_entropy(forget_logits),
        seed=config.seed,
        max_per_side=config.shadow_size,
    )
    return UnlearningMetrics(
        forget_acc=accuracy(forget_logits, forget_labels),
        retain_acc=accuracy(retain_logits, retain_labels),
        test_acc=accuracy(test_logits, test_labels),
        mia_efficacy=efficacy,
        entropy_member_rate=member_rate,
    )
