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


def _paired_runs(unlearned, retrained, what: str) -> tuple[np.ndarray, np.ndarray, int]:
    """Both sides as float64 ``[runs, examples]`` arrays of the same shape, with at least 3 runs."""
    u, r = np.asarray(unlearned, dtype=np.float64), np.asarray(retrained, dtype=np.float64)
    if u.ndim != 2 or u.shape != r.shape:
        raise ErasekitError(f"unlearned and retrained confidences must both be [runs, examples], got {u.shape} and {r.shape}")
    if u.shape[0] < 3:
        raise ErasekitError(f"{what} needs at least 3 runs per side (got {u.shape[0]}); use --seeds 3 or more")
    return u, r, u.shape[0]


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
    u, r, runs = _paired_runs(unlearned_confidence, retrained_confidence, "the per-example score")
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


# ---------------------------------------------------------------------------------------------
# U-LiRA: a per-example likelihood-ratio attack (Hayes et al., "Inexact Unlearning Needs More
# Careful Evaluations to Avoid a False Sense of Privacy", 2024; LiRA: Carlini et al., S&P 2022).

GLOBAL_VARIANCE_BELOW = 16  # with fewer shadow runs per side, per-example variances are too noisy: pool them


@dataclass(frozen=True)
class AttackResult:
    """How well an attack tells positives from negatives: ROC AUC (0.5 = chance; higher = the attack
    wins) and the true-positive rate at 1 % and 0.1 % false positives. ``negatives``: how many negative
    scores there were — below 1,000 the 0.1 % point is read at FPR 0, a conservative value."""

    auc: float
    tpr_at_1pct_fpr: float
    tpr_at_01pct_fpr: float
    positives: int
    negatives: int


def tpr_at_fpr(scores, is_positive, fpr: float) -> float:
    """The largest true-positive rate over thresholds whose false-positive rate is at most ``fpr``."""
    from sklearn.metrics import roc_curve

    curve_fpr, curve_tpr, _ = roc_curve(np.asarray(is_positive, dtype=int), np.asarray(scores, dtype=np.float64))
    allowed = curve_fpr <= fpr + 1e-12
    return float(curve_tpr[allowed].max()) if allowed.any() else 0.0


def attack_result(scores, is_positive) -> AttackResult:
    """AUC and low-FPR TPRs of ``scores`` (higher = more likely positive)."""
    from sklearn.metrics import roc_auc_score

    labels = np.asarray(is_positive, dtype=bool)
    scores = np.asarray(scores, dtype=np.float64)
    if labels.all() or not labels.any():
        raise ErasekitError("an attack needs both positive and negative examples to score")
    return AttackResult(
        auc=float(roc_auc_score(labels, scores)),
        tpr_at_1pct_fpr=tpr_at_fpr(scores, labels, 0.01),
        tpr_at_01pct_fpr=tpr_at_fpr(scores, labels, 0.001),
        positives=int(labels.sum()),
        negatives=int((~labels).sum()),
    )


def _gaussian_log_density(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    return -0.5 * ((x - mean) / std) ** 2 - np.log(std)


def likelihood_ratio(target, in_runs, out_runs, pooled_variance: bool | None = None) -> np.ndarray:
    """log N(target; μ_in, σ_in) − log N(target; μ_out, σ_out) per example.

    ``in_runs``/``out_runs``: ``[K, n]`` confidences of the example under the K shadow models of
    each side; ``target``: ``[n]`` confidences under the audited model. ``pooled_variance``
    (default: when K < 16) uses one σ per side, the mean of the per-example variances, as LiRA
    does with few shadow models.
    """
    inside = np.asarray(in_runs, dtype=np.float64)
    outside = np.asarray(out_runs, dtype=np.float64)
    pooled = min(len(inside), len(outside)) < GLOBAL_VARIANCE_BELOW if pooled_variance is None else pooled_variance

    def spread(runs: np.ndarray) -> np.ndarray:
        per_example = runs.var(axis=0, ddof=1)
        value = np.full_like(per_example, per_example.mean()) if pooled else per_example
        return np.sqrt(np.maximum(value, 1e-12))  # identical outputs have no spread: keep the density finite

    return _gaussian_log_density(np.asarray(target, dtype=np.float64), inside.mean(axis=0), spread(inside)) - (
        _gaussian_log_density(np.asarray(target, dtype=np.float64), outside.mean(axis=0), spread(outside))
    )


def u_lira(unlearned_confidence, retrained_confidence, pooled_variance: bool | None = None) -> AttackResult:
    """Can a per-example attack tell the unlearned models from retrained ones on the forget set?

    ``*_confidence``: ``[N, n_forget]`` logit-scaled confidences of the same forget examples under
    N unlearned runs (each from its own original) and N retrained runs. Leave one run out per side:
    fit per-example Gaussians on the other N−1 runs of each side (the shadow models, which the
    attacker is assumed to have, with the same method), then score the left-out unlearned run
    (positive) and the left-out retrained run (negative) with the likelihood ratio. AUC 0.5 =
    indistinguishable from retraining; run on the original it measures plain membership (the
    attack's positive control).
    """
    u, r, runs = _paired_runs(unlearned_confidence, retrained_confidence, "the likelihood-ratio attack")
    scores, labels = [], []
    for k in range(runs):
        others = np.arange(runs) != k
        for target, positive in ((u[k], True), (r[k], False)):
            scores.append(likelihood_ratio(target, u[others], r[others], pooled_variance))
            labels.append(np.full(u.shape[1], positive))
    return attack_result(np.concatenate(scores), np.concatenate(labels))


# ---------------------------------------------------------------------------------------------
# KLOM: KL divergence of margins (Georgiev et al., "Attribute-to-Delete: Machine Unlearning via
# Datamodel Matching", 2024).

KLOM_BINS = 20
KLOM_CLIP = 100.0
KLOM_SMOOTHING = 0.5  # pseudo-count per bin, so that a bin empty on one side gives a finite divergence


def klom(unlearned_margins, retrained_margins, bins: int = KLOM_BINS, clip: float = KLOM_CLIP) -> np.ndarray:
    """Per example, KL(unlearned ‖ retrained) between histograms of its margin over the runs.

    ``*_margins``: ``[N, n]`` (the logit-scaled confidence is the margin z_y − logsumexp_{j≠y} z_j).
    Margins are clipped to ±``clip``; the ``bins`` equal-width bins span the example's pooled
    range; each bin gets a pseudo-count of 0.5. 0 = the same distribution; it grows as the two
    sets of runs separate. With few runs the estimate is biased up even for retrain against
    retrain: read it next to that ceiling.
    """
    u = np.clip(np.asarray(unlearned_margins, dtype=np.float64), -clip, clip)
    r = np.clip(np.asarray(retrained_margins, dtype=np.float64), -clip, clip)
    if u.ndim != 2 or r.ndim != 2 or u.shape[1] != r.shape[1] or len(u) < 2 or len(r) < 2:
        raise ErasekitError(
            f"KLOM needs [runs ≥ 2, examples] margins on both sides with the same examples, got {u.shape} and {r.shape}"
        )
    low = np.minimum(u.min(axis=0), r.min(axis=0))
    width = np.maximum(u.max(axis=0), r.max(axis=0)) - low
    width = np.where(width > 0, width, 1.0)

    def histogram(values: np.ndarray) -> np.ndarray:
        index = np.minimum(((values - low) / width * bins).astype(int), bins - 1)  # [runs, n]
        counts = np.zeros((values.shape[1], bins))
        np.add.at(counts, (np.broadcast_to(np.arange(values.shape[1]), index.shape), index), 1.0)
        counts += KLOM_SMOOTHING
        return counts / counts.sum(axis=1, keepdims=True)

    p, q = histogram(u), histogram(r)
    return (p * np.log(p / q)).sum(axis=1)


@dataclass(frozen=True)
class PerExampleEvidence:
    """Per-example views of one method against the retrain runs (N runs per side, same forget set).

    ``neurips_score``: the NeurIPS 2023 score in [0, 1] (higher = more like retrain; ``peaky_fraction``
    of the examples had outputs that barely vary across runs). ``attack``: U-LiRA on the forget set
    (AUC 0.5 = indistinguishable). ``klom_*_p95``: 95th percentile of KLOM over the forget set and
    over samples of the retain and test sets (lower = closer to retrain). Read every number next to
    the ``independent_retrain`` row, which gives its ceiling at this N.
    """

    runs: int
    neurips_score: float
    neurips_forget_score: float
    peaky_fraction: float
    attack: AttackResult
    klom_forget_p95: float
    klom_retain_p95: float
    klom_test_p95: float


@dataclass(frozen=True)
class RunConfidences:
    """Logit-scaled confidences (margins) of one model on the forget set and on fixed retain and test samples."""

    forget: np.ndarray
    retain_sample: np.ndarray
    test_sample: np.ndarray


def per_example_evidence(
    unlearned: list[RunConfidences],
    retrained: list[RunConfidences],
    retain_accuracy: tuple[float, float],
    test_accuracy: tuple[float, float],
) -> PerExampleEvidence:
    """All per-example views of N unlearned runs against N retrained runs."""
    stack = lambda runs, part: np.stack([getattr(run, part) for run in runs])  # noqa: E731
    score = neurips_score(stack(unlearned, "forget"), stack(retrained, "forget"), retain_accuracy, test_accuracy)
    return PerExampleEvidence(
        runs=score.runs,
        neurips_score=score.final,
        neurips_forget_score=score.forget_score,
        peaky_fraction=score.peaky_fraction,
        attack=u_lira(stack(unlearned, "forget"), stack(retrained, "forget")),
        klom_forget_p95=float(np.percentile(klom(stack(unlearned, "forget"), stack(retrained, "forget")), 95)),
        klom_retain_p95=float(np.percentile(klom(stack(unlearned, "retain_sample"), stack(retrained, "retain_sample")), 95)),
        klom_test_p95=float(np.percentile(klom(stack(unlearned, "test_sample"), stack(retrained, "test_sample")), 95)),
    )
