"""Concept erasure on the shipped diffusion testbed: every method, one digit and three digits at once.

Writes ``benchmarks/results/generative_erasure.md`` and ``.json`` (and the HTML reports) with, per
method: the erased digit's judge accuracy (fit and held-out phrasings), the worst drop among the
other digits, the FID ratio against the original's own sampling noise, the attack success rates
and the seconds. Targets (issue 14):

- one digit: erased-prompt accuracy ≤ 5 % (held-out phrasings included) for at least three methods,
  every other digit within 3 points of the original and FID within 10 % of the original's;
- three digits at once: the same bars for the closed-form methods;
- every method's attack success rate reported; at least one keeps it ≤ 20 %;
- UCE/RECE under 5 s on 2 CPU cores; ESD under 15 minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

from erasekit.core.io import atomic_write_text, write_files
from erasekit.generative import DIFFUSION_METHODS
from erasekit.models.diffusion_testbed import load_testbed
from erasekit.pipelines.diffusion_erasure import run_diffusion_erasure
from erasekit.report import render_report, to_json

RESULTS = Path(__file__).parent / "results"
SCENARIOS = (
    ("one digit (seven)", ("seven",), None),
    ("three digits (one, three, seven)", ("one", "three", "seven"), "closed_form"),
)


def passes(row) -> bool:
    return row.verdict == "erased"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds-per-prompt", type=int, default=10)
    parser.add_argument("--attack-seeds", type=int, default=5)
    parser.add_argument("--methods", default="all")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    testbed = load_testbed()
    quality = testbed.manifest["quality"]["chosen"]
    methods = DIFFUSION_METHODS.parse_list(args.methods)
    started = time.perf_counter()
    reports = []
    for title, concepts, only in SCENARIOS:
        chosen = [m for m in methods if only is None or DIFFUSION_METHODS.get(m).closed_form]
        report, _ = run_diffusion_erasure(
            testbed,
            concepts,
            chosen,
            seeds_per_prompt=args.seeds_per_prompt,
            attack_seeds=args.attack_seeds,
            command="benchmarks/generative_erasure.py",
        )
        reports.append((title, report))
        for row in report.methods:
            print(f"{title}: {row.method} {row.verdict} fit {row.erased_accuracy_fit:.3f} held-out {row.erased_accuracy_held_out:.3f} "
                  f"worst drop {row.worst_preserved_drop:.1f} FID× {row.fid_ratio:.2f} ASR {row.attack_success} {row.seconds:.1f} s")  # fmt: skip
    minutes = (time.perf_counter() - started) / 60
    load = os.getloadavg()[0]
    lines = [
        "# Concept erasure on the diffusion testbed",
        "",
        f"Produced by `python benchmarks/generative_erasure.py` on {platform.machine()} ({os.cpu_count()} CPUs, load {load:.2f}), "
        f"{minutes:.1f} min; {args.seeds_per_prompt} seeds per prompt (6 fit + 2 held-out phrasings per digit), "
        f"{args.attack_seeds} seeds per prompt for the attacks. Accuracy = share of samples the digit judge reads as the prompted digit.",
        "",
        "## The testbed (from its manifest)",
        "",
        f"- held-out phrasings at guidance {testbed.guidance}: mean judge accuracy {quality['mean_held_out_accuracy']:.1%}, "
        f"worst digit {quality['min_held_out_accuracy']:.1%} (per digit: "
        + ", ".join(f"{a:.0%}" for a in quality["held_out_accuracy"])
        + ") — target ≥ 90 % for every digit: "
        + ("**met**" if quality["min_held_out_accuracy"] >= 0.9 else "**not met**"),
        f"- mark rate in samples {quality['mark_rate']:.1%} vs {testbed.manifest['data']['mark_rate']:.1%} of training images — target within 5 points: "
        + ("**met**" if abs(quality["mark_rate"] - testbed.manifest["data"]["mark_rate"]) <= 0.05 else "**not met**"),
        f"- digit judge {testbed.manifest['quality']['digit_judge_test_accuracy']:.2%} on MNIST test (target ≥ 99 %); "
        f"mark detector {testbed.manifest['quality']['mark_detector_test_accuracy']:.2%}; trained in {testbed.manifest['seconds']['total_s'] / 60:.1f} min",
        "",
    ]
    targets = []
    for title, report in reports:
        attack_names = list(report.attacks)
        lines += [
            f"## {title}",
            "",
            "Original (negative control): erased digit drawn in "
            + ", ".join(f"{r.original_fit:.0%} / {r.original_held_out:.0%}" for r in report.methods[0].digits if r.erased)
            + " of samples (fit / held-out); attack success on the original: "
            + ", ".join(f"{n.replace('_', ' ')} {report.original_attack_success[n]:.0%}" for n in attack_names)
            + f"; FID of the original against itself {report.fid_baseline:.2f}.",
            "",
            "| method | verdict | erased, fit | erased, held-out | worst other digit | FID ratio | |Δpixel| | "
            + " | ".join(n.replace("_", " ") for n in attack_names)
            + " | seconds |",
            "|---|---|---:|---:|---:|---:|---:|" + "---:|" * len(attack_names) + "---:|",
        ]
        for row in report.methods:
            lines.append(
                f"| {row.method} | {row.verdict} | {row.erased_accuracy_fit:.1%} | {row.erased_accuracy_held_out:.1%} | "
                f"{-row.worst_preserved_drop:+.1f} pts | {row.fid_ratio:.2f} | {row.pixel_distance:.3f} | "
                + " | ".join(f"{row.attack_success[n]:.0%}" for n in attack_names)
                + f" | {row.seconds:.1f} |"
            )
        lines.append("")
        good = [r.method for r in report.methods if passes(r)]
        need = 3 if len(report.erased_digits) == 1 else len(report.methods)
        targets.append(
            f"- {title}: methods meeting every bar: {', '.join(good) or 'none'} — **{'met' if len(good) >= need else 'not met'}** (needs {need})"
        )
        robust = [r.method for r in report.methods if max(r.attack_success.values()) <= 0.2]
        targets.append(
            f"- {title}: methods with every attack success rate ≤ 20 %: {', '.join(robust) or 'none'} — **{'met' if robust else 'not met'}**"
        )
        for row in report.methods:
            limit = 5.0 if DIFFUSION_METHODS.get(row.method).closed_form else 900.0
            targets.append(
                f"- {title}: {row.method} took {row.seconds:.1f} s (limit {limit:g} s) — **{'met' if row.seconds <= limit else 'not met'}**"
            )
    lines[lines.index("## The testbed (from its manifest)") : lines.index("## The testbed (from its manifest)")] = [
        "## Targets",
        "",
        *targets,
        "",
    ]
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out / "generative_erasure.md", "\n".join(lines) + "\n")
    atomic_write_text(
        args.out / "generative_erasure.json",
        json.dumps({"scenarios": [{"title": t, "report": json.loads(to_json(r))} for t, r in reports]}, indent=1) + "\n",
    )
    files = {}
    for index, (_, report) in enumerate(reports):
        files[f"generative_erasure_{index + 1}.html"] = render_report(report)["report.html"]
    write_files(args.out, files)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
