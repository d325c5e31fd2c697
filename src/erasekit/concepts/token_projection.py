"""Training-free projection of token embeddings off a concept subspace (after SAFREE: Yoon et al., "SAFREE:
Training-Free and Adaptive Guard for Safe Text-to-Image and Video Generation", ICLR 2025).

For a sentence encoder that mean-pools token states into a sentence embedding:

1. The concept subspace C is spanned by the sentence embeddings of concept keywords;
   P_C = C(CᵀC)⁺Cᵀ.
2. For each token i, the sentence is re-encoded with that token masked out; d_i is the
   distance of that embedding from C. A token is a *trigger* when masking it moves the
   sentence away from C: d_i > (1 + α)·mean_{j≠i} d_j (α = 0.01).
3. Trigger tokens' states are replaced by their projection onto the orthogonal complement
   of C, kept inside the span of the sentence's own token states; the rest are untouched.

Weights never change: this is an inference-time filter, not a removal, and the report
should say so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated

import numpy as np
import torch

from erasekit.core.errors import ConceptError
from erasekit.core.params import NON_NEGATIVE, Params


@dataclass(frozen=True)
class TokenProjectionParams(Params):
    """``alpha`` 0.01 (SAFREE's trigger margin)."""

    alpha: Annotated[float, NON_NEGATIVE] = 0.01


@dataclass(frozen=True)
class FilteredSentence:
    sentence: str
    embedding: np.ndarray  # [d] unit length
    triggers: tuple[str, ...]  # tokens that were projected


def _prepare(model, sentence: str):
    prepare = getattr(model, "preprocess", None) or model.tokenize
    return prepare([sentence])


@torch.no_grad()
def _token_states(model, features) -> torch.Tensor:
    model.eval()
    return model(dict(features))["token_embeddings"][0].double()


def _pooled(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (states * mask[:, None]).sum(0) / mask.sum()


def concept_subspace(model, keywords: Sequence[str]) -> torch.Tensor:
    """Orthonormal basis ``[d, k]`` of the span of the keywords' sentence embeddings."""
    if not keywords:
        raise ConceptError("give at least one concept keyword")
    vectors = torch.as_tensor(np.asarray(model.encode(list(keywords), convert_to_numpy=True)), dtype=torch.float64)
    q, r = torch.linalg.qr(vectors.T)
    keep = r.diagonal().abs() > 1e-8
    return q[:, keep]


def distance_to_subspace(vector: torch.Tensor, basis: torch.Tensor) -> float:
    unit = vector / vector.norm()
    return float((unit - basis @ (basis.T @ unit)).norm())


@torch.no_grad()
def filter_sentence(
    model, sentence: str, basis: torch.Tensor, params: TokenProjectionParams = TokenProjectionParams()
) -> FilteredSentence:
    """The sentence's embedding with trigger tokens projected off the concept subspace."""
    features = _prepare(model, sentence)
    mask = features["attention_mask"][0].double()
    states = _token_states(model, features)
    content = list(range(1, int(mask.sum()) - 1))  # skip [CLS] and [SEP]
    distances = []
    for i in content:
        masked = dict(features)
        masked["attention_mask"] = features["attention_mask"].clone()
        masked["attention_mask"][0, i] = 0
        masked_states = _token_states(model, masked)
        distances.append(distance_to_subspace(_pooled(masked_states, masked["attention_mask"][0].double()), basis))
    distance = np.asarray(distances)
    triggers = []
    for k, i in enumerate(content):
        others = np.delete(distance, k)
        if len(others) and distance[k] > (1 + params.alpha) * others.mean():
            triggers.append(i)
    projected = states.clone()
    if triggers:
        # orthogonal complement of C, then back into the span of this sentence's token states
        span, _ = torch.linalg.qr(states.T)
        for i in triggers:
            off_concept = states[i] - basis @ (basis.T @ states[i])
            projected[i] = span @ (span.T @ off_concept)
    pooled = _pooled(projected, mask)
    tokens = model.tokenizer.convert_ids_to_tokens(features["input_ids"][0].tolist())
    return FilteredSentence(sentence, (pooled / pooled.norm()).numpy(), tuple(tokens[i] for i in triggers))
