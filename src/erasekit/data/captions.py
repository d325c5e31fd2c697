"""The testbed's prompt vocabulary: digit words, caption templates (fit and held out) and styles.

The testbed is trained only on the ``FIT_TEMPLATES`` phrasings; ``HELD_OUT_TEMPLATES`` are never
seen in training and measure whether an erasure (or the model) generalises beyond the phrasings
it was fitted on. ``EXPANSION_TEMPLATES`` are further phrasings an erasure request may name its
concepts in (UCE's ``expand_prompts`` does the same); they share no template with the held-out
ones, so held-out accuracy still measures generalisation. Styles are named in captions; the
implicit mark never is.
"""

from __future__ import annotations

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
FIT_TEMPLATES = (
    "a handwritten {word}",
    "the digit {numeral}",
    "a picture of the number {word}",
    "{word}",
    "an image of a {word}",
    "number {numeral}",
)
HELD_OUT_TEMPLATES = (
    "a drawing of the numeral {word}",
    "the handwritten digit {numeral}",
)
EXPANSION_TEMPLATES = (
    "a photo of a {word}",
    "the number {word}",
    "{numeral}",
    "a {word}",
    "written {numeral}",
    "a sketch of a {word}",
    "this is a {word}",
    "digit {word}",
)
STYLES = ("plain", "thick", "thin", "slanted")
STYLE_PHRASES = {"thick": "with thick strokes", "thin": "with thin strokes", "slanted": "slanted"}


def caption(digit: int, template: str, style: str = "plain") -> str:
    """``template`` filled for ``digit``, with the style phrase appended unless plain."""
    text = template.format(word=DIGIT_WORDS[digit], numeral=str(digit))
    return text if style == "plain" else f"{text}, {STYLE_PHRASES[style]}"


def digit_prompts(digit: int, held_out: bool = False, style: str = "plain") -> list[str]:
    """Every fit (or held-out) phrasing of ``digit``."""
    return [caption(digit, t, style) for t in (HELD_OUT_TEMPLATES if held_out else FIT_TEMPLATES)]


def expansion_prompts(digit: int) -> list[str]:
    """``digit`` in every expansion phrasing (never trained on, never used to evaluate)."""
    return [caption(digit, t) for t in EXPANSION_TEMPLATES]


def styled_prompts(digit: int) -> list[str]:
    """``digit`` in every fit phrasing with each named stroke style."""
    return [caption(digit, t, style) for style in STYLES if style != "plain" for t in FIT_TEMPLATES]


def training_captions() -> list[str]:
    """Every caption the testbed trains on: fit templates × digits × styles, then the empty caption."""
    return [caption(d, t, s) for s in STYLES for d in range(10) for t in FIT_TEMPLATES] + [""]


def caption_index(digit: int, template: int, style: int) -> int:
    """Position of (digit, fit template, style) in :func:`training_captions`."""
    return (style * 10 + digit) * len(FIT_TEMPLATES) + template
