"""Measuring removals: accuracies, membership inference, gaps to the exact reference."""

from erasekit.audit.metrics import accuracy, predict_logits, prediction_entropy, true_label_confidence
from erasekit.audit.mia import entropy_member_rate, mia_efficacy
from erasekit.audit.unlearning import GAP_METRICS, AuditConfig, UnlearningMetrics, audit_model, audit_warnings

__all__ = [
    "GAP_METRICS",
    "AuditConfig",
    "UnlearningMetrics",
    "accuracy",
    "audit_model",
    "audit_warnings",
    "entropy_member_rate",
    "mia_efficacy",
    "predict_logits",
    "prediction_entropy",
    "true_label_confidence",
]
