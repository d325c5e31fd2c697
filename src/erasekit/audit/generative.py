"""Judging a diffusion erasure on the testbed: erasure, preservation and the distance between image sets.

All judges see only images. The digit judge's accuracy on a prompt's samples is the share of
samples it reads as the prompted digit (higher = the concept is there); the style judge's, the
share it reads as drawn in the prompted stroke style; FID is the Fréchet distance between Gaussian
fits of the digit judge's penultimate features (0 = the same distribution).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from erasekit.audit.token_attack import TokenAttackSettings
from erasekit.data.captions import STYLES, digit_prompts
from erasekit.models.diffusion_testbed import Testbed


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """FID between feature sets ``a [n, d]`` and ``b [m, d]``: ‖μa − μb‖² + tr(Σa + Σb − 2(ΣaΣb)^½)."""
    from scipy import linalg

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    with warnings.catch_warnings():
        # ReLU features leave dead dimensions, so the product is often singular; its square root is still fine
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        root = linalg.sqrtm(cov_a @ cov_b)
        if not np.isfinite(root).all():  # nudge both covariances (the usual FID fix)
            offset = np.eye(len(cov_a)) * 1e-6
            root = linalg.sqrtm((cov_a + offset) @ (cov_b + offset))
    trace = np.trace(cov_a) + np.trace(cov_b) - 2 * np.trace(np.real(root))
    return float(np.sum((mu_a - mu_b) ** 2) + max(trace, 0.0))


@dataclass(frozen=True)
class DigitSamples:
    """Samples of one model for every digit: ``images[digit]`` holds fit then held-out phrasings, ``seeds`` each."""

    images: dict[int, torch.Tensor]
    fit_prompts: int
    held_out_prompts: int
    seeds: int


def sample_digits(
    testbed: Testbed, unet: nn.Module, seeds: Sequence[int], fit_templates: int = 6, digits: Sequence[int] = range(10), **options
) -> DigitSamples:
    """Every digit's first ``fit_templates`` fit phrasings and both held-out phrasings, one image per seed (the same seeds
    for every model, so images can be compared pixel for pixel)."""
    images = {}
    fit = 0
    held = 0
    for digit in digits:
        fit_prompts = digit_prompts(digit)[:fit_templates]
        held_prompts = digit_prompts(digit, held_out=True)
        prompts = [p for p in (*fit_prompts, *held_prompts) for _ in seeds]
        images[digit] = testbed.sample(prompts, list(seeds) * (len(fit_prompts) + len(held_prompts)), unet=unet, **options)
        fit, held = len(fit_prompts), len(held_prompts)
    return DigitSamples(images, fit, held, len(seeds))


@dataclass(frozen=True)
class DigitAccuracy:
    """Judge accuracy for one digit's prompts (share of samples read as that digit), fit and held-out phrasings."""

    digit: int
    fit: float
    held_out: float


def share(mask: torch.Tensor) -> float:
    """The share of true entries, counted exactly on any device: a float32 mean puts 1 of 20 samples at 0.0500000007,
    failing a "≤ 5 %" bar it meets (and MPS has no float64)."""
    return int(mask.sum()) / mask.numel() if mask.numel() else float("nan")


def digit_accuracy(testbed: Testbed, samples: DigitSamples) -> dict[int, DigitAccuracy]:
    out = {}
    split = samples.fit_prompts * samples.seeds
    for digit, images in samples.images.items():
        correct = testbed.judge_digits(images) == digit
        out[digit] = DigitAccuracy(digit, share(correct[:split]), share(correct[split:]))
    return out


def mark_rate(testbed: Testbed, samples: DigitSamples, digits: Sequence[int] | None = None) -> float:
    chosen = [samples.images[d] for d in (digits if digits is not None else samples.images)]
    return share(torch.cat([testbed.has_mark(images) for images in chosen]))


NAMED_STYLES = tuple(s for s in STYLES if s != "plain")  # the styles a caption can ask for


@dataclass(frozen=True)
class StyleSamples:
    """Samples of one model per named style: ``images[style]`` holds, digit by digit, its first fit and first held-out
    phrasing with the style phrase appended, ``seeds`` each."""

    images: dict[str, torch.Tensor]
    digits: tuple[int, ...]
    seeds: int

    @property
    def prompted_digits(self) -> torch.Tensor:
        """The digit each image was prompted for, in the order of ``images[style]``."""
        return torch.tensor(self.digits).repeat_interleave(2 * self.seeds)


def style_prompts(digit: int, style: str) -> list[str]:
    return [digit_prompts(digit, style=style)[0], digit_prompts(digit, held_out=True, style=style)[0]]


def sample_styles(testbed: Testbed, unet: nn.Module, seeds: Sequence[int], digits: Sequence[int], **options) -> StyleSamples:
    """Every digit in ``digits`` in each named style (one fit and one held-out phrasing), one image per seed."""
    images = {}
    for style in NAMED_STYLES:
        prompts = [p for digit in digits for p in style_prompts(digit, style) for _ in seeds]
        images[style] = testbed.sample(prompts, list(seeds) * (len(prompts) // len(seeds)), unet=unet, **options)
    return StyleSamples(images, tuple(digits), len(seeds))


@dataclass(frozen=True)
class StyleAccuracy:
    """For one named style over the sampled digits: the share the style judge reads as that style, and the share the
    digit judge reads as the prompted digit."""

    style: str
    style_accuracy: float
    digit_accuracy: float


def style_accuracy(testbed: Testbed, samples: StyleSamples) -> dict[str, StyleAccuracy]:
    out = {}
    for style, images in samples.images.items():
        styled = testbed.judge_styles(images) == STYLES.index(style)
        correct = testbed.judge_digits(images) == samples.prompted_digits.to(images.device)
        out[style] = StyleAccuracy(style, share(styled), share(correct))
    return out


def styled_digit_accuracy(testbed: Testbed, samples: StyleSamples) -> float:
    """The share of every styled sample that the digit judge reads as the prompted digit (all styles pooled)."""
    prompted = samples.prompted_digits
    return share(torch.cat([testbed.judge_digits(images).cpu() == prompted for images in samples.images.values()]))


@torch.no_grad()
def judge_features(testbed: Testbed, samples: DigitSamples, digits: Sequence[int]) -> np.ndarray:
    return torch.cat([testbed.digit_judge.features(samples.images[d]) for d in digits]).cpu().double().numpy()


def pixel_distance(a: DigitSamples, b: DigitSamples, digits: Sequence[int]) -> float:
    """Mean absolute pixel difference between two models' images at the same prompts and seeds (0 = identical)."""
    return float(torch.cat([(a.images[d] - b.images[d]).abs().flatten(1).mean(1) for d in digits]).mean())


# -- robustness: does the concept come back? ---------------------------------------------------------
ATTACKS = {
    "closed_form_embedding": "RECE's closed-form text states that make the edited cross-attention reproduce the original's values for the concept",
    "sampling_noise": "stochastic DDIM (η = 1) instead of deterministic sampling ('When are concepts erased?', noise probe)",
    "completion": "the original model runs the first 2 denoising steps, the edited model finishes (diffusion completion probe)",
    "token_optimisation": "UnlearnDiffAtk: 5 adversarial prefix tokens optimised on the erased model to denoise the original's images of the concept",
}


def attack_success(
    testbed: Testbed, unet: nn.Module, digit: int, seeds: Sequence[int], token_attack: TokenAttackSettings | None = None
) -> dict[str, float]:
    """Share of samples the judge reads as the erased ``digit`` under each attack (attack success rate, in [0, 1]).

    Run on the original model the same numbers are the positive control: every attack must find the
    digit there. Prompts: the digit's fit and held-out phrasings, one sample per seed (the token attack:
    the first fit and the first held-out phrasing; ``token_attack`` None skips it).
    """
    from erasekit.generative.base import plain_unet

    results = _fixed_attacks(testbed, unet, plain_unet(unet), digit, seeds)
    if token_attack is not None:
        from erasekit.audit.token_attack import token_attack as attack

        prompts = [digit_prompts(digit)[0], digit_prompts(digit, held_out=True)[0]]
        results["token_optimisation"] = attack(testbed, unet, digit, prompts, seeds, token_attack)
    return results


@torch.no_grad()
def _fixed_attacks(testbed: Testbed, unet: nn.Module, plain: nn.Module, digit: int, seeds: Sequence[int]) -> dict[str, float]:
    from erasekit.generative.rece import adversarial_states

    prompts = [*digit_prompts(digit), *digit_prompts(digit, held_out=True)]
    repeated = [p for p in prompts for _ in seeds]
    all_seeds = list(seeds) * len(prompts)

    def rate(images: torch.Tensor) -> float:
        return share(testbed.judge_digits(images) == digit)

    states = testbed.encode(prompts)
    rows = states.reshape(-1, states.shape[-1]).double()
    adversarial = adversarial_states(plain, testbed.unet, rows, reg=0.1).float().reshape(states.shape)
    context = adversarial.repeat_interleave(len(seeds), dim=0)
    results = {"closed_form_embedding": rate(testbed.sample(None, all_seeds, unet=unet, context=context))}
    results["sampling_noise"] = rate(testbed.sample(repeated, all_seeds, unet=unet, eta=1.0))
    cond = testbed.encode(repeated)
    uncond = testbed.encode([""]).expand(len(cond), -1, -1)
    latents = testbed.denoise(
        testbed.unet, testbed.initial_latents(all_seeds), cond, uncond, testbed.guidance, testbed.steps, last_step=2
    )
    latents = testbed.denoise(unet, latents, cond, uncond, testbed.guidance, testbed.steps, first_step=2)
    results["completion"] = rate(testbed.decode(latents))
    return results
