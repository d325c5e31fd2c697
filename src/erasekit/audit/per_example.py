"""Per-example membership evidence: logit-scaled confidence and the NeurIPS 2023 unlearning score.

Population attacks (MIA-efficacy) average over the forget set and overestimate privacy. The
score of the NeurIPS 2023 machine-unlearning challenge (Triantafillou et al., "Are we making
progress in unlearning? Findings from the first NeurIPS unlearning competition", 2024) asks,
per forget example, how well *any* threshold rule on its logit-scaled confidence tells N
unlearned models from N retrained ones, turns that into an ε per example, and averages
2^−bucket(ε) over the forget set, scaled by the utility ratios to retrain. 1 = the unlearned
models are per-example indistinguishable from retraining; 0 = always told apart. With small N
the score is biased low even for retrain itself, so it is always reported next to its
retrain-vs-retrain ceiling. Written from the challenge's published description.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from erasekit.core.errors import ErasekitError

DELTA = 1e-5
EPSILON_CAP = 50.0  # the challenge's clip, also given to "peaky" examples (outputs that barely vary)
PEAKY_RATIO = 0.01
_TINY = 1e-45


def logit_scaled_confidence(logits, labels) -> np.ndarray:
    """s(x) = log p_y − log Σ_{j≠y} p_j per example (softmax in float32, then float64; 1e-45 guards the logs)."""
    z = torch.as_tensor(logits).detach().to(torch.float32)
    y = torch.as_tensor(labels).detach().to(torch.int64)
    p = torch.softmax(z, dim=1).to(torch.float64)
    true = p[torch.arange(len(y)), y]
    rest = p.sum(dim=1) - true
    return (torch.log(true + _TINY) - torch.log(rest.clamp_min(0) + _TINY)).numpy()


def _epsilon(fpr: np.ndarray, fnr: np.ndarray, delta: float) -> float:
    """max over rules of max(log(1−δ−FPR) − log FNR, log(1−δ−FNR) − log FPR); a perfect rule gives ∞."""
    if np.any((fpr == 0) & (fnr == 0)):
        return math.inf
    usable = (fpr > 0) & (fnr > 0)  # a rule with exactly one error rate at 0 is discarded
    if not usable.any():
        return 0.0
    fpr, fnr = fpr[usable], fnr[usable]
    with np.errstate(invalid="ignore", divide="ignore"):
        first = np.log(1 - delta - fpr) - np.log(fnr)
        second = np.log(1 - delta - fnr) - np.log(fpr)
    values = np.fmax(first, second)
    values = values[np.isfinite(values)]
    return float(max(0.0, values.max())) if len(values) else 0.0


def _inside(sorted_values: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """How many of ``sorted_values`` lie in [low, high], for every pair."""
    return np.searchsorted(sorted_values, high, side="right") - np.searchsorted(sorted_values, low, side="left")


def example_epsilon(unlearned, retrained, delta: float = DELTA) -> float:
    """ε of one example from its confidence under N unlearned and N retrained models (clipped to [0, 50]).

    Rules: every single threshold (100 per unit over the pooled range; "positive" — the group
    with the larger median — predicted at or above it), and double thresholds around the
    narrower group (400 right edges over 4 units around its maximum × 400 left edges at
    right − its width ± 2). When one group's range is under 1 % of the other's ("peaky"), ε is
    the cap, as in the challenge.
    """
    u = np.sort(np.asarray(unlearned, dtype=np.float64))
    r = np.sort(np.asarray(retrained, dtype=np.float64))
    if len(u) < 2 or len(r) < 2:
        raise ErasekitError("the per-example score needs at least two unlearned and two retrained runs")
    ranges = (u[-1] - u[0], r[-1] - r[0])
    if max(ranges) == 0 or min(ranges) / max(ranges) < PEAKY_RATIO:
        return EPSILON_CAP
    positive, negative = (u, r) if np.median(u) >= np.median(r) else (r, u)
    low, high = min(u[0], r[0]), max(u[-1], r[-1])
    thresholds = np.linspace(low, high, max(2, int(math.ceil(100 * (high - low)))))
    # single thresholds: predict positive when c ≥ t
    fnr = np.searchsorted(positive, thresholds, side="left") / len(positive)
    fpr = 1 - np.searchsorted(negative, thresholds, side="left") / len(negative)
    best = _epsilon(fpr, fnr, delta)
    # double thresholds: predict the narrower group when left ≤ c ≤ right
    narrow, wide = (u, r) if ranges[0] <= ranges[1] else (r, u)
    width = narrow[-1] - narrow[0]
    right = np.linspace(narrow[-1] - 2, narrow[-1] + 2, 400)
    left = right[:, None] + np.linspace(-2, 2, 400)[None, :] - width
    right = np.broadcast_to(right[:, None], left.shape)
    valid = left <= right
    caught = _inside(narrow, left[valid], right[valid]) / len(narrow)
    false = _inside(wide, left[valid], right[valid]) / len(wide)
    best = max(best, _epsilon(false, 1 - caught, delta))
    return float(min(best, EPSILON_CAP))


@dataclass(frozen=True)
class NeurIPSScore:
    """``forget_score``: mean of 2^−bucket(ε) over the forget set, in [0, 1] (higher = more like retrain).
    ``final``: forget score × retain-accuracy ratio × test-accuracy ratio to the retrained runs.
    ``peaky_fraction``: share of examples whose outputs barely vary across runs (scored ε = 50,
    e.g. a deterministic method run N times from one original)."""

    forget_score: float
    final: float
    runs: int
    peaky_fraction: float
    epsilons: tuple[float, ...]


def neurips_score(
    unlearned_confidence,
    retrained_confidence,
    retain_accuracy: tuple[float, float] = (1.0, 1.0),
    test_accuracy: tuple[float, float] = (1.0, 1.0),
    delta: float = DELTA,
) -> NeurIPSScore:
    """Score N unlearned runs against N retrained runs.

    ``*_confidence``: ``[N, n_forget]`` logit-scaled confidences, the same forget examples in the
    same order. ``retain_accuracy``/``test_accuracy``: (mean over unlearned runs, mean over
    retrained runs).
    """
    u = np.asarray(unlearned_confidence, dtype=np.float64)
    r = np.asarray(retrained_confidence, dtype=np.float64)
    if u.ndim != 2 or u.shape != r.shape:
        raise ErasekitError(f"unlearned and retrained confidences must both be [runs, examples], got {u.shape} and {r.shape}")
    runs = u.shape[0]
    if runs < 3:
        raise ErasekitError(f"the per-example score needs at least 3 runs per side (got {runs}); use --seeds 3 or more")
    epsilons = []
    peaky = 0
    for i in range(u.shape[1]):
        ranges = (np.ptp(u[:, i]), np.ptp(r[:, i]))
        peaky += int(bool(max(ranges) == 0 or min(ranges) / max(ranges) < PEAKY_RATIO))
        epsilons.append(example_epsilon(u[:, i], r[:, i], delta))
    buckets = np.floor(np.asarray(epsilons) / 0.5)
    last = 2 * math.ceil(math.log(runs - 1)) - 1
    per_example = np.where(buckets <= last, 2.0 ** (-buckets), 0.0)
    forget_score = float(per_example.mean())
    ratio = (retain_accuracy[0] / max(retain_accuracy[1], 1e-12)) * (test_accuracy[0] / max(test_accuracy[1], 1e-12))
    return NeurIPSScore(forget_score, forget_score * ratio, runs, peaky / u.shape[1], tuple(epsilons))
