"""How a text-encoder edit moved sentence embeddings: erased sentences, held-out paraphrases, unrelated text."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from erasekit.concepts.text_edit import TextEdit
from erasekit.models.text_encoder import encode


def row_cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity of each row of ``a`` with the same row of ``b``."""
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-12)


def edit_report(
    model, edit: TextEdit, held_out_templates: Sequence[str], terms: Sequence[str], anchor: str, unrelated: Sequence[str]
) -> dict[str, float]:
    """Cosine similarities before/after: erased sentences, held-out paraphrases, unrelated text.

    ``success_rate``: share of concept sentences whose edited embedding is closer to the
    anchor sentence's original embedding than to its own original embedding.
    """
    held = [t.format(w) for t in held_out_templates for w in terms]
    held_anchor = [t.format(anchor) for t in held_out_templates for w in terms]
    before = {
        "fit": encode(model, edit.concept_sentences),
        "fit_anchor": encode(model, edit.anchor_sentences),
        "held": encode(model, held),
        "held_anchor": encode(model, held_anchor),
        "unrelated": encode(model, unrelated),
    }
    edit.apply(model)
    try:
        after = {k: encode(model, s) for k, s in (("fit", edit.concept_sentences), ("held", held), ("unrelated", unrelated))}
    finally:
        edit.undo(model)
    stats = {}
    for split in ("fit", "held"):
        to_anchor_before = row_cosines(before[split], before[f"{split}_anchor"])
        to_anchor_after = row_cosines(after[split], before[f"{split}_anchor"])
        to_self = row_cosines(after[split], before[split])
        stats[f"{split}_cos_to_anchor_before"] = float(to_anchor_before.mean())
        stats[f"{split}_cos_to_anchor_after"] = float(to_anchor_after.mean())
        stats[f"{split}_success_rate"] = float(np.mean(to_anchor_after > to_self))
    unrelated_cos = row_cosines(after["unrelated"], before["unrelated"])
    stats["unrelated_cos_mean"] = float(unrelated_cos.mean())
    stats["unrelated_cos_min"] = float(unrelated_cos.min())
    stats["condition_number"] = edit.result.edits["layer"].condition_number
    return stats
