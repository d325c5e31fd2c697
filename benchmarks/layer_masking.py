"""Input masking (black, grey) against layer masking on MNIST: how much of a masked CNN's prediction change is the mask's own shape.

Trains erasekit's small CNN on a 10,000-image MNIST subset (3 epochs), then masks random squares
of 4, 6 and 8 pixels on 1,000 test images and records the mean total-variation change of the
output distribution on squares over the digit and on squares over blank background (where there
is no evidence to remove, so any change is the mask's doing). Writes
``benchmarks/results/layer_masking.{md,json}``.

    python benchmarks/layer_masking.py      # ~2 min on 2 cores
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import cpu_name

os.environ.setdefault("ERASEKIT_PROGRESS", "0")

from erasekit.audit.masking import masking_comparison
from erasekit.audit.metrics import accuracy, predict_logits
from erasekit.core import progress
from erasekit.data import load_mnist
from erasekit.models import ModelSpec
from erasekit.training import Recipe, train

RESULTS = Path(__file__).resolve().parent / "results"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def main() -> int:
    progress.set_enabled(False)
    started = time.perf_counter()
    splits = load_mnist(SHARED / "mnist").subsample_train(10_000)
    model = train(ModelSpec("cnn", (1, 28, 28), 10).build(seed=0), splits.train, Recipe(epochs=3, batch_size=64), seed=0)
    test_acc = accuracy(*predict_logits(model, splits.test))
    images = splits.test.x[:1000]
    results = {size: masking_comparison(model, images, mask_size=size, masks_per_image=4, seed=0) for size in (4, 6, 8)}
    lines = [
        "# Input masking vs layer masking on MNIST",
        "",
        f"Produced by `python benchmarks/layer_masking.py` on {cpu_name()}, {time.perf_counter() - started:.0f} s. "
        f"CNN (2 conv + 2 pool, erasekit's `cnn`) trained on 10,000 MNIST images for 3 epochs: test accuracy {100 * test_acc:.2f} %. "
        "1,000 test images, 4 random squares each. Change = total variation between the output distributions with and "
        "without the mask (0 = none, 1 = disjoint). *Blank*: every pixel under the square is background; *object*: at "
        "least a quarter is ink. Shape share = change on blank / change on object.",
        "",
        "| mask | strategy | change on object | change on blank | shape share | object / blank squares |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for size, result in results.items():
        for row in result.rows:
            lines.append(
                f"| {size}×{size} | {row.strategy} | {row.change_on_object:.4f} | {row.change_on_blank:.4f} | "
                f"{row.shape_share:.2f} | {result.object_masks} / {result.blank_masks} |"
            )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "layer_masking.md").write_text("\n".join(lines) + "\n")
    payload = {"test_acc": test_acc, "results": {size: asdict(r) for size, r in results.items()}}
    (RESULTS / "layer_masking.json").write_text(json.dumps(payload, indent=2) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
