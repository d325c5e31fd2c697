"""Model outputs and per-example scores used by the audit. All accuracies are in [0, 1]."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from erasekit.data.dataset import as_dataset, batches
from erasekit.models.adapter import LogitsExtractor, as_classifier


@torch.no_grad()
def predict_logits(
    model: nn.Module, dataset: Dataset, batch_size: int = 1024, logits: LogitsExtractor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits (float32) and labels for every example, on the CPU; the model runs in eval mode where it is.

    ``model`` is any classifier (``logits`` extracts the class scores from an unusual output,
    see :class:`~erasekit.models.adapter.Classifier`); ``dataset`` anything
    :func:`~erasekit.data.as_dataset` accepts.
    """
    network = as_classifier(model, logits)
    was_training = network.training
    network.eval()
    outputs, labels = [], []
    try:
        for x, y in batches(as_dataset(dataset), batch_size):
            outputs.append(network(x).cpu())
            labels.append(y)
    finally:
        network.train(was_training)
    if not outputs:
        return torch.empty(0, 0), torch.empty(0, dtype=torch.int64)
    return torch.cat(outputs), torch.cat(labels)


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of examples whose arg-max logit is the label; 0.0 on an empty set."""
    if len(labels) == 0:
        return 0.0
    return float((logits.argmax(dim=1) == labels).float().mean())


def true_label_confidence(logits: torch.Tensor, labels: torch.Tensor) -> np.ndarray:
    """Softmax probability of the true label, p_y(x) ∈ [0, 1].

    A diverged model's NaN/inf outputs carry no probability for the label: they score 0.
    """
    probs = torch.softmax(logits.double(), dim=1)
    confidence = probs[torch.arange(len(labels)), labels].numpy()
    return np.where(np.isfinite(confidence), confidence, 0.0)


def prediction_entropy(logits: torch.Tensor) -> np.ndarray:
    """Shannon entropy of the softmax in nats: −Σ_j p_j log p_j (0 for a one-hot prediction).

    NaN/inf outputs count as maximally uncertain (log C).
    """
    log_probs = torch.log_softmax(logits.double(), dim=1)
    entropy = -(log_probs.exp() * log_probs).sum(dim=1).numpy()
    return np.where(np.isfinite(entropy), entropy, np.log(max(logits.shape[1], 1)))


def non_finite_fraction(logits: torch.Tensor) -> float:
    """Share of examples whose output contains NaN or inf (a diverged model)."""
    if len(logits) == 0:
        return 0.0
    return float((~torch.isfinite(logits)).any(dim=1).double().mean())
