"""Erase concepts from a diffusion model with one or more methods and judge each against the original.

The original model is the negative control: it must draw the concept (else there is nothing to
erase and the report says so). Every model samples the same prompts at the same seeds; the
reference set for FID is the original at other seeds, so ``fid_ratio`` 1 means "as different
from the original as the original is from itself".
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from erasekit.audit.generative import (
    ATTACKS,
    DigitSamples,
    StyleAccuracy,
    StyleSamples,
    attack_success,
    digit_accuracy,
    frechet_distance,
    judge_features,
    mark_rate,
    pixel_distance,
    sample_digits,
    sample_styles,
    style_accuracy,
    style_prompts,
    styled_digit_accuracy,
)
from erasekit.audit.token_attack import TokenAttackSettings
from erasekit.core.errors import MethodError
from erasekit.core.provenance import Provenance, sha256_state
from erasekit.data.captions import DIGIT_WORDS, digit_prompts, expansion_prompts, styled_prompts
from erasekit.generative import ConceptRequest, ErasedDiffusion, diffusion_method_info, erase_concepts
from erasekit.models.diffusion_testbed import Testbed, image_grid_png
from erasekit.report.diffusion import (
    DiffusionErasureReport,
    DiffusionModelInfo,
    DigitRow,
    Grid,
    MethodResult,
    ReferenceResult,
    StyleRow,
    worst_style_drop,
)

MAX_ERASED_ACCURACY = 0.05  # the erased digit's prompts: at most 5 % of samples still read as it
MAX_PRESERVED_DROP = 3.0  # points: every other digit keeps its accuracy within 3 points
MAX_FID_RATIO = 1.10  # other digits' FID within 10 % of the original's own sampling noise
MIN_ORIGINAL_ACCURACY = 0.5  # below this the original does not draw the concept: nothing to erase


def digit_of(concept: str) -> int:
    """``"seven"`` or ``"7"`` → 7; anything else is not a concept of the testbed's prompts."""
    text = concept.strip().lower()
    if text in DIGIT_WORDS:
        return DIGIT_WORDS.index(text)
    if text.isdigit() and len(text) == 1:
        return int(text)
    raise MethodError(
        f"concept {concept!r} never occurs in the testbed's prompts; the testbed's concepts are the digits "
        f"({', '.join(DIGIT_WORDS)} or 0–9)"
    )


def concept_request(
    concepts: Sequence[str], preserve: Sequence[str] = (), expand: bool = True
) -> tuple[ConceptRequest, tuple[int, ...]]:
    """Erase the named digits in their fit phrasings; preserve the others (or ``preserve``) in theirs.

    ``expand`` (the default) names every digit in the expansion phrasings and in its fit phrasings with
    each stroke style too, on both sides: a request fitted on six phrasings moves the words they share
    with other phrasings, so that the *held-out* phrasings of the kept digits lost up to 30 points when
    three digits were erased at once; and UCE erasing seven from plain phrasings alone still drew seven
    in a third of "…, with thick strokes" samples while the kept digits stopped being drawn slanted.
    The held-out phrasings are never part of a request."""
    digits = tuple(dict.fromkeys(digit_of(c) for c in concepts))
    kept = tuple(dict.fromkeys(digit_of(c) for c in preserve)) if preserve else tuple(d for d in range(10) if d not in digits)
    clash = sorted(set(digits) & set(kept))
    if clash:
        raise MethodError(f"digit {DIGIT_WORDS[clash[0]]} is both erased and preserved; a concept cannot be both")

    def phrasings(digit: int) -> list[str]:
        return [*digit_prompts(digit), *((*expansion_prompts(digit), *styled_prompts(digit)) if expand else ())]

    erase_prompts = tuple(p for d in digits for p in phrasings(d))
    preserve_prompts = tuple(p for d in kept for p in phrasings(d))
    return ConceptRequest(tuple(DIGIT_WORDS[d] for d in digits), erase_prompts, preserve_prompts), digits


def _strip(images: torch.Tensor) -> str:
    """A row of images as a base64 PNG."""
    return base64.b64encode(image_grid_png(images, len(images))).decode()


@dataclass(frozen=True)
class _Judged:
    samples: DigitSamples
    accuracy: dict
    styles: dict[str, StyleAccuracy]  # empty when the testbed has no style judge or no digit is kept
    erased_styled: float  # the erased digits asked for in each stroke style: share read as the prompted digit
    kept_style_samples: StyleSamples | None  # None when the testbed has no style judge or no digit is kept
    erased_style_samples: StyleSamples | None  # None when nothing is erased


def _judge(testbed: Testbed, unet, seeds: Sequence[int], kept: Sequence[int], erased: Sequence[int] = ()) -> _Judged:
    samples = sample_digits(testbed, unet, seeds)
    styles, kept_styled = {}, None
    if testbed.style_judge is not None and kept:
        kept_styled = sample_styles(testbed, unet, seeds, kept)
        styles = style_accuracy(testbed, kept_styled)
    erased_styled = sample_styles(testbed, unet, seeds, erased) if erased else None
    erased_share = styled_digit_accuracy(testbed, erased_styled) if erased_styled is not None else float("nan")
    return _Judged(samples, digit_accuracy(testbed, samples), styles, erased_share, kept_styled, erased_styled)


def _grids(original: _Judged, after: _Judged, erased: Sequence[int], kept: Sequence[int]) -> tuple[Grid, ...]:
    """Before/after strips: each erased digit and the first two kept ones in their first fit and held-out phrasing;
    then each erased digit and the first kept one in every stroke style (first fit phrasing)."""
    grids = []
    per = original.samples.seeds
    for d in (*erased, *kept[:2]):
        for index, prompt in ((0, digit_prompts(d)[0]), (original.samples.fit_prompts, digit_prompts(d, held_out=True)[0])):
            before = original.samples.images[d][index * per : (index + 1) * per]
            after_images = after.samples.images[d][index * per : (index + 1) * per]
            grids.append(Grid(prompt, d in erased, _strip(before), _strip(after_images)))
    styled = [(original.erased_style_samples, after.erased_style_samples, list(erased))]
    styled.append((original.kept_style_samples, after.kept_style_samples, list(kept[:1])))
    for before_samples, after_samples, digits in styled:
        if before_samples is None or after_samples is None:
            continue
        for d in digits:
            position = before_samples.digits.index(d)  # each digit holds its fit then its held-out phrasing
            rows = slice(2 * position * per, (2 * position + 1) * per)
            for style in before_samples.images:
                grids.append(
                    Grid(
                        style_prompts(d, style)[0],
                        d in erased,
                        _strip(before_samples.images[style][rows]),
                        _strip(after_samples.images[style][rows]),
                    )
                )
    return tuple(grids)


def _style_rows(original: _Judged, after: _Judged) -> tuple[StyleRow, ...]:
    return tuple(
        StyleRow(
            name, row.style_accuracy, after.styles[name].style_accuracy, row.digit_accuracy, after.styles[name].digit_accuracy
        )
        for name, row in original.styles.items()
    )


def verdict(
    erased_fit: float,
    erased_held_out: float,
    worst_drop: float,
    fid_ratio: float,
    noise_points: float = 0.0,
    style_drop: float | None = None,
    style_noise_points: float = 0.0,
    erased_styled: float | None = None,
) -> tuple[str, str]:
    """ "erased", "erased, with collateral damage" or "not erased", with the reason; a method that changed nothing
    keeps the original's accuracy on the erased digit and is "not erased". ``noise_points`` (one digit's standard
    error) is quoted beside a drop it could explain; ``style_drop`` (the worst named style's drop over the other
    digits, in points; None when not measured) is held to the same bar, with ``style_noise_points``;
    ``erased_styled`` (the erased digit asked for in the stroke styles) to the erasure bar."""
    if max(erased_fit, erased_held_out) > MAX_ERASED_ACCURACY:
        return "not erased", (
            f"the judge still reads the erased digit in {max(erased_fit, erased_held_out):.0%} of its samples "
            f"(at most {MAX_ERASED_ACCURACY:.0%} allowed)"
        )
    if erased_styled is not None and erased_styled > MAX_ERASED_ACCURACY:
        return "not erased", (
            f"asked for in a stroke style (“…, with thick strokes”), the erased digit is still drawn in {erased_styled:.0%} "
            f"of samples (at most {MAX_ERASED_ACCURACY:.0%} allowed)"
        )
    damaged = []
    if worst_drop > MAX_PRESERVED_DROP:
        within = " — within 2 standard errors of sampling noise" if worst_drop <= 2 * noise_points else ""
        damaged.append(
            f"another digit lost {worst_drop:.1f} points (at most {MAX_PRESERVED_DROP:g}; noise ±{noise_points:.1f}{within})"
        )
    if style_drop is not None and style_drop > MAX_PRESERVED_DROP:
        within = " — within 2 standard errors of sampling noise" if style_drop <= 2 * style_noise_points else ""
        damaged.append(
            f"a stroke style lost {style_drop:.1f} points on the other digits (at most {MAX_PRESERVED_DROP:g}; "
            f"noise ±{style_noise_points:.1f}{within})"
        )
    if fid_ratio > MAX_FID_RATIO:
        damaged.append(f"the other digits' FID is {fid_ratio:.2f}× the original's sampling noise (at most {MAX_FID_RATIO:g}×)")
    if damaged:
        return "erased, with collateral damage", "; ".join(damaged)
    styles = " in every stroke style" if style_drop is not None else ""
    return "erased", f"the erased digit's prompts no longer draw it and every other digit is drawn as before{styles}"


def run_diffusion_erasure(
    testbed: Testbed,
    concepts: Sequence[str],
    methods: Sequence[str],
    preserve: Sequence[str] = (),
    params: dict | None = None,
    seeds_per_prompt: int = 5,
    command: str = "",
    attack_seeds: int = 3,
    token_attack: TokenAttackSettings | None = TokenAttackSettings(),
    reference: Testbed | None = None,
    expand: bool = True,
) -> tuple[DiffusionErasureReport, dict[str, ErasedDiffusion]]:
    """Erase ``concepts`` with each method; returns the report and the edited models by method. ``reference``: the
    testbed retrained without the erased digits (``retrain_without_digits``), judged beside the methods. ``expand``:
    see :func:`concept_request`."""
    request, digits = concept_request(concepts, preserve, expand)
    if reference is not None:
        left_out = tuple(sorted(reference.manifest.get("reference", {}).get("without_digits", [])))
        if left_out != tuple(sorted(digits)):
            raise MethodError(
                f"the reference testbed {reference.source} was retrained without digits {list(left_out)}, not "
                f"{sorted(digits)}: retrain one without exactly the erased digits"
            )
        shared = ("autoencoder.safetensors", "digit_judge.safetensors")
        if any(reference.manifest.get("sha256", {}).get(n) != testbed.manifest.get("sha256", {}).get(n) for n in shared):
            raise MethodError(
                f"the reference testbed {reference.source} was retrained from another testbed (its autoencoder or judge "
                "differs); retrain it from this one with `erasekit testbed reference --model ...`"
            )
    for method in methods:
        diffusion_method_info(method)  # unknown names fail before any sampling
    params = params or {}
    seeds = list(range(seeds_per_prompt))
    reference_seeds = [10_000 + s for s in seeds]
    samples_per_digit = (len(digit_prompts(0)) + len(digit_prompts(0, held_out=True))) * seeds_per_prompt
    noise_points = 100 * (0.25 / samples_per_digit) ** 0.5
    others = [d for d in range(10) if d not in digits]
    original = _judge(testbed, testbed.unet, seeds, others, digits)
    # one style's accuracy pools two phrasings of every kept digit
    style_noise = 100 * (0.25 / (2 * seeds_per_prompt * len(others))) ** 0.5 if original.styles else None
    for digit in digits:
        row = original.accuracy[digit]
        if (row.fit + row.held_out) / 2 < MIN_ORIGINAL_ACCURACY:
            raise MethodError(
                f"the original model draws {DIGIT_WORDS[digit]} in only {(row.fit + row.held_out) / 2:.0%} of its samples: "
                "there is nothing to erase (the negative control fails)"
            )
    attack_seed_list = [20_000 + s for s in range(attack_seeds)]

    def attacked(unet) -> dict[str, float]:
        per_digit = [attack_success(testbed, unet, d, attack_seed_list, token_attack) for d in digits]
        return {name: float(np.mean([r[name] for r in per_digit])) for name in ATTACKS if name in per_digit[0]}

    original_attacks = attacked(testbed.unet)
    other_seed_samples = sample_digits(testbed, testbed.unet, reference_seeds, digits=others)
    reference_features = judge_features(testbed, other_seed_samples, others)
    fid_baseline = frechet_distance(judge_features(testbed, original.samples, others), reference_features)
    results = []
    edited_models = {}
    for method in methods:
        erased = erase_concepts(testbed, request, method, params.get(method))
        edited_models[method] = erased
        after = _judge(testbed, erased.unet, seeds, others, digits)
        styles = _style_rows(original, after)
        rows = tuple(
            DigitRow(
                d,
                DIGIT_WORDS[d],
                d in digits,
                original.accuracy[d].fit,
                original.accuracy[d].held_out,
                after.accuracy[d].fit,
                after.accuracy[d].held_out,
            )
            for d in range(10)
        )
        erased_fit = float(np.mean([after.accuracy[d].fit for d in digits]))
        erased_held = float(np.mean([after.accuracy[d].held_out for d in digits]))
        worst = max((r.original - r.after) * 100 for r in rows if not r.erased) if others else 0.0
        fid = frechet_distance(judge_features(testbed, after.samples, others), reference_features)
        ratio = fid / fid_baseline if fid_baseline > 0 else float("inf")
        label, reason = verdict(
            erased_fit, erased_held, worst, ratio, noise_points, worst_style_drop(styles), style_noise or 0.0, after.erased_styled
        )
        results.append(
            MethodResult(
                method=method,
                params=erased.params,
                seconds=erased.seconds,
                peak_memory_mb=erased.peak_memory_mb,
                edited_tensors=len(erased.edited_parameters),
                changed_values=erased.changed_values,
                digits=rows,
                erased_accuracy_fit=erased_fit,
                erased_accuracy_held_out=erased_held,
                erased_accuracy_styled=after.erased_styled,
                worst_preserved_drop=float(worst),
                fid=fid,
                fid_ratio=ratio,
                pixel_distance=pixel_distance(after.samples, original.samples, others),
                mark_rate=mark_rate(testbed, after.samples),
                attack_success=attacked(erased.unet),
                verdict=label,
                reason=reason,
                grids=_grids(original, after, digits, others),
                styles=styles,
                worst_style_drop=worst_style_drop(styles),
            )
        )
    reference_result = None
    if reference is not None:
        judged = _judge(testbed, reference.unet, seeds, others, digits)
        reference_styles = _style_rows(original, judged)
        rows = tuple(
            DigitRow(d, DIGIT_WORDS[d], d in digits, original.accuracy[d].fit, original.accuracy[d].held_out, judged.accuracy[d].fit, judged.accuracy[d].held_out)
            for d in range(10)
        )  # fmt: skip
        fid = frechet_distance(judge_features(testbed, judged.samples, others), reference_features)
        reference_result = ReferenceResult(
            source=reference.source,
            training_images=int(reference.manifest["reference"].get("training_images", 0)),
            training_seconds=float(reference.manifest.get("seconds", {}).get("total_s", float("nan"))),
            digits=rows,
            erased_accuracy_fit=float(np.mean([judged.accuracy[d].fit for d in digits])),
            erased_accuracy_held_out=float(np.mean([judged.accuracy[d].held_out for d in digits])),
            erased_accuracy_styled=judged.erased_styled,
            worst_preserved_drop=max((r.original - r.after) * 100 for r in rows if not r.erased) if others else 0.0,
            fid_ratio=fid / fid_baseline if fid_baseline > 0 else float("inf"),
            attack_success=attacked(reference.unet),
            styles=reference_styles,
            worst_style_drop=worst_style_drop(reference_styles),
        )
    info = DiffusionModelInfo(
        source=testbed.source,
        unet_sha256=sha256_state(testbed.unet),
        guidance=testbed.guidance,
        sampling_steps=testbed.steps,
        training_mark_rate=float(testbed.manifest.get("data", {}).get("mark_rate", float("nan"))),
    )
    report = DiffusionErasureReport(
        model=info,
        concepts=request.concepts,
        erased_digits=digits,
        erase_prompts=request.erase_prompts,
        preserve_prompts=request.preserve_prompts,
        seeds_per_prompt=seeds_per_prompt,
        original_mark_rate=mark_rate(testbed, original.samples),
        original_erased_styled=original.erased_styled,
        original_attack_success=original_attacks,
        attacks={name: text for name, text in ATTACKS.items() if name in original_attacks},
        fid_baseline=fid_baseline,
        accuracy_noise_points=noise_points,
        thresholds={
            "max_erased_accuracy": MAX_ERASED_ACCURACY,
            "max_preserved_drop_points": MAX_PRESERVED_DROP,
            "max_fid_ratio": MAX_FID_RATIO,
        },
        methods=tuple(results),
        provenance=Provenance.collect(seeds=seeds, command=command),
        reference=reference_result,
        style_noise_points=style_noise,
        notes=()
        if original.styles or not others
        else (
            f"{testbed.source} has no style judge (it was trained before erasekit had one): preservation of the stroke "
            "styles was not measured; retrain the testbed with `erasekit testbed train` to measure it",
        ),
    )
    return report, edited_models
