"""A verdict for every unlearning method: did it remove, under-remove, over-remove, change nothing, or break?

A gap to the exact reference means nothing on its own: two retrains from different seeds
differ too. The **noise floor** is that retrain-vs-retrain gap, per metric; a method whose
forget-set metrics are within ``floor_multiplier`` × the floor (and never less than
``min_tolerance``) of retrain's *matches* it. The rules, in order:

1. ``no_change`` — the weights are byte-identical to the original's; ``damaged`` — the weights or
   outputs are NaN/inf; ``no_change`` — no output probability moved by more than
   ``no_change_tolerance`` on the forget and test sets.
2. ``damaged`` — retain or test accuracy is within
   ``majority_margin`` of the majority-class rate, or more than ``damage_margin`` (and more than
   the tolerance) below retrain's.
3. ``matches_retrain`` — forget accuracy and MIA-efficacy are both within tolerance of retrain's,
   and retain and test accuracy are not lower than retrain's by more than the utility tolerance
   (``floor_multiplier`` × their floor, at least ``min_utility_tolerance``); a method that forgets
   like retrain but pays for it in accuracy beyond that is ``damaged``.
4. ``under_forgets`` — the forget set still looks more learned than under retrain (higher forget
   accuracy, lower MIA-efficacy), measured in tolerance units; otherwise ``over_forgets``: the
   forget set looks *less* familiar than retrain's, which is itself a membership signal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from erasekit.audit.unlearning import UnlearningMetrics
from erasekit.core.params import NON_NEGATIVE, POSITIVE, Params

VerdictName = Literal["matches_retrain", "under_forgets", "over_forgets", "no_change", "damaged"]
VERDICTS: tuple[VerdictName, ...] = ("matches_retrain", "under_forgets", "over_forgets", "no_change", "damaged")


@dataclass(frozen=True)
class VerdictRules(Params):
    """Thresholds of the verdict, as fractions (0.01 = one percentage point)."""

    floor_multiplier: Annotated[float, POSITIVE] = 2.0
    min_tolerance: Annotated[float, NON_NEGATIVE] = 0.01
    damage_margin: Annotated[float, POSITIVE] = 0.05
    majority_margin: Annotated[float, NON_NEGATIVE] = 0.02
    no_change_tolerance: Annotated[float, NON_NEGATIVE] = 1e-6
    min_utility_tolerance: Annotated[float, NON_NEGATIVE] = 0.02

    def tolerance(self, floor: float) -> float:
        return max(self.floor_multiplier * floor, self.min_tolerance)

    def utility_tolerance(self, floor: float) -> float:
        return max(self.floor_multiplier * floor, self.min_utility_tolerance)


@dataclass(frozen=True)
class Verdict:
    verdict: VerdictName
    reason: str


@dataclass(frozen=True)
class MethodEvidence:
    """What the verdict reads for one method (means over seeds, except the worst-case flags).

    ``output_change``: the largest change of any output probability against the original, on
    the forget and test sets, over all seeds. ``identical_weights``: the weights equal the
    original's in every seed. ``diverged``: NaN/inf weights or outputs in some seed.
    """

    metrics: UnlearningMetrics
    output_change: float
    identical_weights: bool
    diverged: bool


def _pts(value: float) -> str:
    return f"{100 * value:.1f}"


def judge(
    evidence: MethodEvidence,
    reference: UnlearningMetrics,
    noise_floor: UnlearningMetrics,
    majority_rate: float,
    rules: VerdictRules = VerdictRules(),
) -> Verdict:
    """The verdict for one method against the retrain reference and the retrain-vs-retrain noise floor."""
    m = evidence.metrics
    if evidence.identical_weights:
        return Verdict("no_change", "the weights are byte-identical to the original's")
    if evidence.diverged:
        return Verdict("damaged", "NaN/inf weights or outputs: the method diverged")
    if evidence.output_change <= rules.no_change_tolerance:
        return Verdict(
            "no_change", f"no output probability moved by more than {evidence.output_change:.1e} on the forget and test sets"
        )
    for name, value, ref in (("test", m.test_acc, reference.test_acc), ("retain", m.retain_acc, reference.retain_acc)):
        if value <= majority_rate + rules.majority_margin:
            return Verdict("damaged", f"{name} accuracy {_pts(value)} % is at the majority-class rate {_pts(majority_rate)} %")
        floor = noise_floor.test_acc if name == "test" else noise_floor.retain_acc
        if ref - value > max(rules.damage_margin, rules.tolerance(floor)):
            return Verdict(
                "damaged", f"{name} accuracy {_pts(value)} % is {_pts(ref - value)} points below retrain's {_pts(ref)} %"
            )
    tol_forget = rules.tolerance(noise_floor.forget_acc)
    tol_mia = rules.tolerance(noise_floor.mia_efficacy)
    forget_gap = m.forget_acc - reference.forget_acc
    mia_gap = m.mia_efficacy - reference.mia_efficacy
    numbers = (
        f"forget acc {_pts(m.forget_acc)} % vs retrain {_pts(reference.forget_acc)} % (tolerance ±{_pts(tol_forget)}), "
        f"MIA-efficacy {_pts(m.mia_efficacy)} % vs {_pts(reference.mia_efficacy)} % (±{_pts(tol_mia)})"
    )
    if abs(forget_gap) <= tol_forget and abs(mia_gap) <= tol_mia:
        for name, value, ref, floor in (
            ("retain", m.retain_acc, reference.retain_acc, noise_floor.retain_acc),
            ("test", m.test_acc, reference.test_acc, noise_floor.test_acc),
        ):
            if ref - value > rules.utility_tolerance(floor):
                return Verdict(
                    "damaged",
                    f"forgets like retrain, but {name} accuracy {_pts(value)} % is {_pts(ref - value)} points below retrain's "
                    f"{_pts(ref)} % (tolerance {_pts(rules.utility_tolerance(floor))})",
                )
        return Verdict("matches_retrain", f"within the retrain-vs-retrain noise floor: {numbers}")
    # positive = the forget set still looks learned (more accurate, more often called a member) than under retrain
    learned = forget_gap / max(tol_forget, 1e-12) - mia_gap / max(tol_mia, 1e-12)
    if learned > 0:
        return Verdict("under_forgets", f"the forget set still looks learned: {numbers}")
    return Verdict(
        "over_forgets", f"the forget set looks less familiar than under retrain (itself a membership signal): {numbers}"
    )
