"""The diffusion-erasure report (schema ``erasekit.diffusion-erasure/1``): per method, erasure, preservation, cost
and the verdict, against the original model as the negative control."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from erasekit.core.provenance import Provenance

SCHEMA = "erasekit.diffusion-erasure/1"


@dataclass(frozen=True)
class DigitRow:
    """Judge accuracy (share of samples read as the prompted digit, in [0, 1]) before and after, fit and held-out phrasings."""

    digit: int
    word: str
    erased: bool
    original_fit: float
    original_held_out: float
    after_fit: float
    after_held_out: float

    @property
    def original(self) -> float:
        return (self.original_fit + self.original_held_out) / 2

    @property
    def after(self) -> float:
        return (self.after_fit + self.after_held_out) / 2


@dataclass(frozen=True)
class StyleRow:
    """One named stroke style, over the other digits' prompts with the style phrase, before and after: the share the
    style judge reads as the style and the share the digit judge reads as the prompted digit (each in [0, 1])."""

    style: str
    original_style: float
    after_style: float
    original_digit: float
    after_digit: float

    @property
    def drop(self) -> float:
        """The larger of the two accuracy drops, in points (0–100); negative = both improved."""
        return 100 * max(self.original_style - self.after_style, self.original_digit - self.after_digit)


def worst_style_drop(rows: tuple[StyleRow, ...]) -> float | None:
    """The largest drop over the styles, in points; None when styles were not measured."""
    return max(r.drop for r in rows) if rows else None


@dataclass(frozen=True)
class Grid:
    """Before/after images for one prompt at the same seeds (base64 PNG strips)."""

    prompt: str
    erased: bool
    before_png: str
    after_png: str


@dataclass(frozen=True)
class MethodResult:
    method: str
    params: Any
    seconds: float
    peak_memory_mb: float  # during the erasure, above the level at its start
    edited_tensors: int
    changed_values: int
    digits: tuple[DigitRow, ...]
    erased_accuracy_fit: float  # mean over erased digits; the original's is the positive control
    erased_accuracy_held_out: float
    erased_accuracy_styled: float  # the erased digits asked for in each stroke style (one fit, one held-out phrasing)
    worst_preserved_drop: float  # largest accuracy drop (points, 0–100) among the other digits; negative = improved
    fid: float  # other digits' samples vs the original's at other seeds; compare with fid_baseline
    fid_ratio: float  # fid / fid_baseline (1 = as far as the original is from itself)
    pixel_distance: float  # mean |Δpixel| vs the original at the same prompts and seeds, other digits
    mark_rate: float
    attack_success: dict[str, float]  # attack → share of erased-digit samples read as the digit under it (lower = robust)
    verdict: str
    reason: str
    grids: tuple[Grid, ...] = ()
    styles: tuple[StyleRow, ...] = ()  # empty when the testbed has no style judge
    worst_style_drop: float | None = None  # points; None when styles were not measured


@dataclass(frozen=True)
class ReferenceResult:
    """The exact reference: the UNet retrained from scratch without the erased digits' images (same recipe, same
    autoencoder and judges), judged on the same prompts and seeds as every method."""

    source: str
    training_images: int
    training_seconds: float
    digits: tuple[DigitRow, ...]
    erased_accuracy_fit: float
    erased_accuracy_held_out: float
    erased_accuracy_styled: float
    worst_preserved_drop: float
    fid_ratio: float
    attack_success: dict[str, float]
    styles: tuple[StyleRow, ...] = ()
    worst_style_drop: float | None = None


@dataclass(frozen=True)
class DiffusionModelInfo:
    source: str
    unet_sha256: str
    guidance: float
    sampling_steps: int
    training_mark_rate: float


@dataclass(frozen=True)
class DiffusionErasureReport:
    model: DiffusionModelInfo
    concepts: tuple[str, ...]
    erased_digits: tuple[int, ...]
    erase_prompts: tuple[str, ...]
    preserve_prompts: tuple[str, ...]
    seeds_per_prompt: int
    original_mark_rate: float
    original_erased_styled: float  # the positive control for erased_accuracy_styled
    original_attack_success: dict[str, float]  # the positive control: every attack finds the digit in the original
    attacks: dict[str, str]  # attack → what it does
    fid_baseline: float  # the original at evaluation seeds vs the original at other seeds (sampling noise)
    accuracy_noise_points: float  # worst-case binomial standard error of one digit's accuracy, in points (the noise floor)
    thresholds: dict[str, float]
    methods: tuple[MethodResult, ...]
    provenance: Provenance
    reference: ReferenceResult | None = None
    notes: tuple[str, ...] = ()
    style_noise_points: float | None = None  # worst-case standard error of one style's accuracy; None: styles not measured
    schema: str = SCHEMA
    template: ClassVar[str] = "diffusion.html"
