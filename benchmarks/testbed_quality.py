"""Quality of the shipped diffusion testbed, measured on independent samples.

``erasekit testbed train`` checked the shipped testbed's mark rate on 1,200 samples, but every digit
was sampled at the same 120 seeds; the initial noise largely decides whether the mark is drawn,
so that check rests on about 120 independent draws (a standard error of about 3 points, not 1).
The issue's bar for the implicit mark — the share of samples carrying it within 5 points of the
share of training images that carried it — needs better. This script samples every digit in
every phrasing (6 fit + 2 held-out), ``--seeds`` samples per phrasing, and unprompted samples,
**each sample at its own seed** (from 100,000: disjoint from the manifest's check and from every
other benchmark), and reports:

- judge accuracy per digit on the held-out and fit phrasings (bar: ≥ 90 % held-out for every digit);
- the mark rate on fit, held-out and unprompted samples with standard errors and 95 % Wilson
  intervals, and the gap to the training images' rate;
- which corner the marks are drawn in, read by matching the mark's checkerboard in each corner
  (the training images carry it in each corner equally often).

Writes ``benchmarks/results/testbed_quality.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import torch

from erasekit.core.io import atomic_write_text
from erasekit.data.captions import DIGIT_WORDS, digit_prompts
from erasekit.models.diffusion_testbed import load_testbed
from erasekit.training.diffusion_testbed import CORNERS, MARK

RESULTS = Path(__file__).parent / "results"
FIRST_SEED = 100_000
MAX_MARK_GAP = 0.05  # the issue's bar: the sampled mark rate within 5 points of the training images' rate
MIN_HELD_OUT = 0.90  # the bar: every digit's held-out accuracy at the default guidance


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The 95 % Wilson score interval of a binomial share."""
    if n == 0:
        return float("nan"), float("nan")
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def rate(successes: int, n: int) -> dict:
    low, high = wilson(successes, n)
    share = successes / n if n else float("nan")
    return {
        "marked": successes,
        "samples": n,
        "rate": share,
        "standard_error": math.sqrt(share * (1 - share) / n) if n else float("nan"),
        "wilson_95": [low, high],
    }


def corner_of_mark(images: torch.Tensor) -> torch.Tensor:
    """Per image, the corner (index into ``CORNERS``) whose 4×4 patch best matches the mark's checkerboard."""
    pattern = (MARK * 2 - 1).to(images)
    scores = torch.stack([((images[:, 0, r : r + 4, c : c + 4] - 0.5) * pattern).mean((1, 2)) for r, c in CORNERS], 1)
    return scores.argmax(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=50, help="seeds per phrasing (default 50: 4,000 prompted samples)")
    parser.add_argument("--unprompted", type=int, default=500, help="samples with the empty caption")
    parser.add_argument("--model", default="testbed", help="testbed folder (default: the shipped one)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--render", action="store_true", help="only rewrite the .md from the last run's .json")
    args = parser.parse_args()
    if args.render:
        atomic_write_text(args.out / "testbed_quality.md", render(json.loads((args.out / "testbed_quality.json").read_text())))
        return
    started = time.perf_counter()
    testbed = load_testbed(args.model, device=args.device)
    next_seed = FIRST_SEED
    per_digit = {}
    marks = {"fit": [0, 0], "held_out": [0, 0]}
    corners = torch.zeros(len(CORNERS), dtype=torch.long)
    for digit in range(10):
        row = {}
        for split, prompts in (("fit", digit_prompts(digit)), ("held_out", digit_prompts(digit, held_out=True))):
            batch = [p for p in prompts for _ in range(args.seeds)]
            # every sample its own seed: the initial noise largely decides whether a mark is drawn, so samples that
            # share seeds across prompts are not independent draws of it
            images = testbed.sample(batch, list(range(next_seed, next_seed + len(batch))))
            next_seed += len(batch)
            row[split] = float((testbed.judge_digits(images) == digit).float().mean())
            marked = testbed.has_mark(images).cpu()
            marks[split][0] += int(marked.sum())
            marks[split][1] += len(marked)
            corners += torch.bincount(corner_of_mark(images.cpu())[marked], minlength=len(CORNERS))
        per_digit[DIGIT_WORDS[digit]] = row
        print(f"{DIGIT_WORDS[digit]}: {row}, marks so far {marks}", flush=True)
    unprompted_seeds = list(range(next_seed, next_seed + args.unprompted))
    unprompted = testbed.has_mark(testbed.sample([""] * args.unprompted, unprompted_seeds)).cpu()
    chosen = testbed.manifest["quality"]["chosen"]
    prompted = [marks["fit"][0] + marks["held_out"][0], marks["fit"][1] + marks["held_out"][1]]
    training_rate = float(testbed.manifest["data"]["mark_rate"])
    result = {
        "testbed": str(testbed.source),
        "unet_sha256": testbed.manifest["sha256"]["unet.safetensors"],
        "guidance": testbed.guidance,
        "sampling_steps": testbed.manifest.get("sampling_steps"),
        "samples_per_phrasing": args.seeds,
        "first_seed": FIRST_SEED,
        "accuracy": per_digit,
        "training_mark_rate": training_rate,
        "mark_rate": {
            "fit": rate(*marks["fit"]),
            "held_out": rate(*marks["held_out"]),
            "prompted": rate(*prompted),
            "unprompted": rate(int(unprompted.sum()), len(unprompted)),
            "all": rate(prompted[0] + int(unprompted.sum()), prompted[1] + len(unprompted)),
        },
        "manifest_mark_rate": chosen["mark_rate"],
        "manifest_distinct_seeds": 6 * int(chosen["seeds_per_prompt"]),
        "marks_per_corner": dict(zip(("top-left", "top-right", "bottom-left", "bottom-right"), corners.tolist(), strict=True)),
        "device": str(testbed.device),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "seconds": time.perf_counter() - started,
        "command": " ".join(["python", "benchmarks/testbed_quality.py", *sys.argv[1:]]),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out / "testbed_quality.json", json.dumps(result, indent=2) + "\n")
    atomic_write_text(args.out / "testbed_quality.md", render(result))
    print(render(result))


def render(result: dict) -> str:
    marks = result["mark_rate"]
    training = result["training_mark_rate"]
    prompted = marks["prompted"]
    gap = training - prompted["rate"]
    low, high = prompted["wilson_95"]
    held_out = {d: r["held_out"] for d, r in result["accuracy"].items()}
    worst = min(held_out, key=held_out.get)

    def line(name: str, r: dict) -> str:
        return (
            f"| {name} | {r['samples']:,} | {r['rate']:.1%} | ±{r['standard_error'] * 100:.1f} | "
            f"{r['wilson_95'][0]:.1%} – {r['wilson_95'][1]:.1%} | {(training - r['rate']) * 100:.1f} |"
        )

    corners = result["marks_per_corner"]
    total = sum(corners.values())
    if abs(gap) > MAX_MARK_GAP:
        status = "**not met**"
    elif training - low > MAX_MARK_GAP:
        status = (
            f"**met** by the estimate, not with confidence (the 95 % interval reaches {(training - low) * 100:.1f} points below)"
        )
    else:
        status = "**met**, with the whole 95 % interval inside the bar"
    lines = [
        "# The shipped diffusion testbed's quality",
        "",
        f"Produced by `{result['command']}` on {result['device']} ({result['machine']}, {result['cpus']} CPUs), "
        f"{result['seconds'] / 60:.1f} min; UNet sha256 {result['unet_sha256'][:12]}…, guidance {result['guidance']}, "
        f"{result['sampling_steps']} sampling steps; {result['samples_per_phrasing']} samples per phrasing, every sample "
        f"at its own seed (from {result['first_seed']:,}).",
        "",
        "## Judge accuracy per digit",
        "",
        f"Held-out phrasings: worst digit {worst} {held_out[worst]:.1%} — target ≥ {MIN_HELD_OUT:.0%} for every digit: "
        + ("**met**" if held_out[worst] >= MIN_HELD_OUT else "**not met**"),
        "",
        "| digit | held-out phrasings | fit phrasings |",
        "|---|---:|---:|",
        *(f"| {d} | {r['held_out']:.1%} | {r['fit']:.1%} |" for d, r in result["accuracy"].items()),
        "",
        "## The implicit mark (never named in a caption)",
        "",
        f"{training:.1%} of the training images carry it. Target: the prompted samples carry it within "
        f"{MAX_MARK_GAP * 100:.0f} points of that.",
        "",
        "| samples | n | mark rate | standard error (points) | 95 % interval | gap to training (points) |",
        "|---|---:|---:|---:|---:|---:|",
        line("fit phrasings", marks["fit"]),
        line("held-out phrasings", marks["held_out"]),
        line("**all prompted**", prompted),
        line("unprompted (empty caption)", marks["unprompted"]),
        line("prompted and unprompted", marks["all"]),
        "",
        f"Prompted samples: {prompted['rate']:.1%} (95 % interval {low:.1%} – {high:.1%}), {gap * 100:.1f} points below "
        f"the training rate — target within {MAX_MARK_GAP * 100:.0f} points: {status}. The fit phrasings alone: "
        f"{marks['fit']['rate']:.1%}, {(training - marks['fit']['rate']) * 100:.1f} points below (at most "
        f"{(training - marks['fit']['wilson_95'][0]) * 100:.1f} within the 95 % interval). The manifest's own check said "
        f"{result['manifest_mark_rate']:.1%} on the fit phrasings, but at only {result['manifest_distinct_seeds']} seeds, "
        "each reused for every digit: were the mark decided by the noise alone, that is "
        f"±{100 * (result['manifest_mark_rate'] * (1 - result['manifest_mark_rate']) / result['manifest_distinct_seeds']) ** 0.5:.1f} "
        "points of standard error, not ±1.",
        "",
        "Where the drawn marks sit (the training images carry a quarter in each corner): "
        + ", ".join(f"{name} {count / total:.0%}" if total else f"{name} –" for name, count in corners.items())
        + ".",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
