"""Concept erasure on the shipped diffusion testbed: every method, one digit and three digits at once.

Writes ``benchmarks/results/generative_erasure.md`` and ``.json`` (and the HTML reports) with, per
method: the erased digit's judge accuracy (fit and held-out phrasings), the worst drop among the
other digits and among the stroke styles (thick, thin, slanted, asked for on the other digits), the FID ratio against the original's own sampling noise, the attack success rates
and the seconds. Targets (issue 14):

- one digit: erased-prompt accuracy ≤ 5 % (held-out phrasings included) for at least three methods,
  every other digit within 3 points of the original and FID within 10 % of the original's;
- three digits at once: the same bars for the closed-form methods;
- every method's attack success rate reported; at least one keeps it ≤ 20 %;
- UCE/RECE under 5 s on 2 CPU cores; ESD under 15 minutes.

Each scenario runs at the methods' defaults and again at the settings ``generative_tuning.py`` found
best (``TUNED_ONE``/``TUNED_THREE``: mostly erasekit's negative guidance η = 1, since mapping a digit
onto the unconditional branch leaves it at its unprompted base rate; ``TUNED_ONE``'s RECE, RealEra and
ESD-x retuned after requests named the stroke styles). Every request names each digit in the 6 fit and 8 expansion phrasings and in the fit
phrasings with each stroke style (``--no-expand``: the 6 fit phrasings only); the held-out phrasings
are only ever judged. ``--scenarios 2`` runs only the second scenario (numbered as in
``SCENARIOS``) and ``--name`` picks the result files' stem, so that one scenario can be rerun at more
seeds beside the full table.

SPM's transfer claim is checked too: the adapter that erased "seven" from the shipped testbed is
applied to a second testbed trained by the same script with seed 1. The exact reference for
erasing "seven" — the UNet retrained without any seven (``erasekit testbed reference``, trained on
first use into ``benchmarks/.cache/testbed-without-seven``, about 15 min) — is judged beside the
methods (trained on first use into
``benchmarks/.cache/testbed-seed1``, about 35 min on 2 cores; ``--transfer-testbed DIR`` uses another).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from erasekit.audit.token_attack import TokenAttackSettings
from erasekit.core.io import atomic_write_text, write_files
from erasekit.generative import DIFFUSION_METHODS
from erasekit.models.diffusion_testbed import load_testbed
from erasekit.pipelines.diffusion_erasure import run_diffusion_erasure, verdict
from erasekit.report import render_report, to_json

RESULTS = Path(__file__).parent / "results"
TRANSFER_TESTBED = Path(__file__).parent / ".cache" / "testbed-seed1"
REFERENCE_TESTBED = Path(__file__).parent / ".cache" / "testbed-without-seven"
THREE = ("one", "three", "seven")


@dataclass(frozen=True)
class Scenario:
    title: str
    concepts: tuple[str, ...]
    methods: str | tuple[str, ...]  # "all", "closed_form" or method names
    params: dict = field(default_factory=dict)  # method → its params (the defaults where absent)


def tuned(**per_method: dict) -> dict:
    """Params per method from the overrides that ``generative_tuning.py`` found best (the defaults elsewhere)."""
    return {m: DIFFUSION_METHODS.get(m).make_params(values) for m, values in per_method.items()}


# η = 1: erasekit's negative guidance (see UCEParams); RECE's edits damaged other digits at its own preserve_scale 0.1;
# ESD-x/ESD-u: lr 1e-4 with erasekit's retain term (preserve_weight) — without it ESD-x cost "nine" 25 points and
# ESD-u ruined the model
# one digit, retuned for 32-phrasing requests (generative_tuning.py --group styled): RECE needed more preservation,
# RealEra no LoRA stage, ESD-x a larger step
TUNED_ONE = tuned(
    uce={"negative_guidance": 1.0},
    rece={"negative_guidance": 1.0, "preserve_scale": 10.0},
    realera={"negative_guidance": 1.0, "lora_iterations": 0},
    esd_x={"lr": 2e-4, "preserve_weight": 1.0},
    esd_u={"lr": 1e-4, "iterations": 400, "preserve_weight": 1.0},
    spm={"transport": False},
)
TUNED_THREE = tuned(
    uce={"negative_guidance": 1.0, "preserve_scale": 3.0},
    rece={"negative_guidance": 1.0, "preserve_scale": 1.0},
    realera={"negative_guidance": 1.0},
)

SCENARIOS = (
    Scenario("one digit (seven), defaults", ("seven",), "all"),
    Scenario("one digit (seven), tuned settings", ("seven",), tuple(TUNED_ONE), TUNED_ONE),
    Scenario("three digits (one, three, seven), defaults", THREE, "closed_form"),
    Scenario("three digits (one, three, seven), tuned settings", THREE, tuple(TUNED_THREE), TUNED_THREE),
)


def passes(row) -> bool:
    """The issue's bars: erased ≤ 5 % (fit and held-out), every other digit within 3 points, FID ratio ≤ 1.10."""
    return verdict(row.erased_accuracy_fit, row.erased_accuracy_held_out, row.worst_preserved_drop, row.fid_ratio)[0] == "erased"


def keeps_styles(row) -> bool:
    """The report's stricter verdict: the issue's bars, the erased digit gone when asked for in a stroke style too, and
    every stroke style of the other digits within 3 points."""
    return row.verdict == "erased"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds-per-prompt", type=int, default=10)
    parser.add_argument("--attack-seeds", type=int, default=5)
    parser.add_argument("--methods", default="all")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--transfer-testbed", type=Path, default=TRANSFER_TESTBED)
    parser.add_argument("--no-transfer", action="store_true", help="skip SPM's transfer check")
    parser.add_argument("--reference-testbed", type=Path, default=REFERENCE_TESTBED)
    parser.add_argument("--no-token-attack", action="store_true", help="skip the token attack (quick checks)")
    parser.add_argument("--no-expand", action="store_true", help="requests name each digit in its 6 fit phrasings only")
    parser.add_argument("--scenarios", default="", help="comma-separated scenario numbers, 1-4 (default: all)")
    parser.add_argument("--name", default="generative_erasure", help="stem of the result files")
    args = parser.parse_args()
    testbed = load_testbed()
    quality = testbed.manifest["quality"]["chosen"]
    methods = DIFFUSION_METHODS.parse_list(args.methods)
    started = time.perf_counter()
    reports = []
    every = set(range(1, len(SCENARIOS) + 1))
    picked = {int(n) for n in args.scenarios.split(",") if n.strip().isdigit()} or every
    if picked - every or any(n.strip() and not n.strip().isdigit() for n in args.scenarios.split(",")):
        parser.error(f"--scenarios takes numbers from 1 to {len(SCENARIOS)}, e.g. 2,4")
    reference = exact_reference(testbed, args.reference_testbed) if 1 in picked else None
    spm_adapter = None  # the defaults' SPM adapter, for the transfer check
    for number, scenario in enumerate(SCENARIOS, 1):
        if number not in picked:
            continue
        title, concepts = scenario.title, scenario.concepts
        chosen = [m for m in methods if selected(scenario, m)]
        if not chosen:
            continue
        report, edited = run_diffusion_erasure(
            testbed,
            concepts,
            chosen,
            params=scenario.params,
            seeds_per_prompt=args.seeds_per_prompt,
            attack_seeds=args.attack_seeds,
            token_attack=None if args.no_token_attack else TokenAttackSettings(),
            command="benchmarks/generative_erasure.py",
            reference=reference if scenario is SCENARIOS[0] else None,
            expand=not args.no_expand,
        )
        reports.append((scenario, report))
        if scenario is SCENARIOS[0] and "spm" in edited:
            spm_adapter = edited["spm"].unet
        for row in report.methods:
            print(f"{title}: {label(scenario, row.method)} {row.verdict} fit {row.erased_accuracy_fit:.3f} held-out {row.erased_accuracy_held_out:.3f} "
                  f"worst drop {row.worst_preserved_drop:.1f} FID× {row.fid_ratio:.2f} ASR {row.attack_success} {row.seconds:.1f} s")  # fmt: skip
    transfer_lines = []
    if not args.no_transfer and spm_adapter is not None:
        transfer_lines = spm_transfer(spm_adapter, args.transfer_testbed, args.seeds_per_prompt)
    minutes = (time.perf_counter() - started) / 60
    load = os.getloadavg()[0]
    lines = [
        "# Concept erasure on the diffusion testbed",
        "",
        f"Produced by `python benchmarks/generative_erasure.py{' ' + ' '.join(sys.argv[1:]) if sys.argv[1:] else ''}` on {platform.machine()} ({os.cpu_count()} CPUs, load {load:.2f}), "
        f"{minutes:.1f} min; {args.seeds_per_prompt} seeds per prompt (6 fit + 2 held-out phrasings per digit), "
        f"{args.attack_seeds} seeds per prompt for the attacks. Accuracy = share of samples the digit judge reads as the prompted digit. "
        + (
            "Requests name each digit in its 6 fit phrasings only."
            if args.no_expand
            else "Requests name each digit in its 6 fit and 8 expansion phrasings and in its 6 fit phrasings with each of the 3 "
            "stroke styles: 32 phrasings (never the held-out ones)."
        ),
        "",
        "## The testbed (from its manifest)",
        "",
        f"- held-out phrasings at guidance {testbed.guidance}: mean judge accuracy {quality['mean_held_out_accuracy']:.1%}, "
        f"worst digit {quality['min_held_out_accuracy']:.1%} (per digit: "
        + ", ".join(f"{a:.0%}" for a in quality["held_out_accuracy"])
        + ") — target ≥ 90 % for every digit: "
        + ("**met**" if quality["min_held_out_accuracy"] >= 0.9 else "**not met**"),
        mark_rate_line(testbed.manifest),
        f"- digit judge {testbed.manifest['quality']['digit_judge_test_accuracy']:.2%} on MNIST test (target ≥ 99 %); "
        f"mark detector {testbed.manifest['quality']['mark_detector_test_accuracy']:.2%}; trained in {testbed.manifest['seconds']['total_s'] / 60:.1f} min",
        *style_judge_lines(testbed.manifest),
        "",
    ]
    for scenario, report in reports:
        title = scenario.title
        attack_names = list(report.attacks)
        lines += [
            f"## {title}",
            "",
            "Original (negative control): erased digit drawn in "
            + ", ".join(f"{r.original_fit:.0%} / {r.original_held_out:.0%}" for r in report.methods[0].digits if r.erased)
            + f" of samples (fit / held-out), {report.original_erased_styled:.0%} when asked for in a stroke style; attack success on the original: "
            + ", ".join(f"{n.replace('_', ' ')} {report.original_attack_success[n]:.0%}" for n in attack_names)
            + f"; FID of the original against itself {report.fid_baseline:.2f}."
            + (
                " Stroke styles asked for on the other digits (style judge / digit judge): "
                + ", ".join(f"{r.style} {r.original_style:.0%} / {r.original_digit:.0%}" for r in report.methods[0].styles)
                + f" (one style's standard error up to ±{report.style_noise_points:.1f} points)."
                if report.methods and report.methods[0].styles
                else ""
            ),
            "",
            "| method | verdict | erased, fit | erased, held-out | erased, styled | worst other digit | worst style | FID ratio | |Δpixel| | "
            + " | ".join(n.replace("_", " ") for n in attack_names)
            + " | seconds | peak memory |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|" + "---:|" * len(attack_names) + "---:|---:|",
        ]
        if report.reference is not None:
            r = report.reference
            lines.append(
                f"| retrained without seven (exact reference) | — | {r.erased_accuracy_fit:.1%} | {r.erased_accuracy_held_out:.1%} | "
                f"{r.erased_accuracy_styled:.1%} | "
                f"{0.0 - r.worst_preserved_drop + 0.0:+.1f} pts | {style_cell(r.worst_style_drop)} | {r.fid_ratio:.2f} | — | "
                + " | ".join(f"{r.attack_success[n]:.0%}" for n in attack_names)
                + f" | {r.training_seconds:.0f} (training) | — |"
            )
        for row in report.methods:
            lines.append(
                f"| {label(scenario, row.method)} | {row.verdict} | {row.erased_accuracy_fit:.1%} | {row.erased_accuracy_held_out:.1%} | "
                f"{row.erased_accuracy_styled:.1%} | "
                f"{0.0 - row.worst_preserved_drop + 0.0:+.1f} pts | {style_cell(row.worst_style_drop)} | {row.fid_ratio:.2f} | {row.pixel_distance:.3f} | "
                + " | ".join(f"{row.attack_success[n]:.0%}" for n in attack_names)
                + f" | {row.seconds:.1f} | {row.peak_memory_mb:.0f} MB |"
            )
        lines.append("")
    targets = target_lines(reports)
    lines += transfer_lines
    lines[lines.index("## The testbed (from its manifest)") : lines.index("## The testbed (from its manifest)")] = [
        "## Targets",
        "",
        *targets,
        "",
    ]
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out / f"{args.name}.md", "\n".join(lines) + "\n")
    atomic_write_text(
        args.out / f"{args.name}.json",
        json.dumps({"scenarios": [{"title": s.title, "report": json.loads(to_json(r))} for s, r in reports]}, indent=1) + "\n",
    )
    files = {}
    for index, (_, report) in enumerate(reports):
        files[f"{args.name}_{index + 1}.html"] = render_report(report)["report.html"]
    write_files(args.out, files)
    print("\n".join(lines))


def label(scenario: Scenario, method: str) -> str:
    """The method's name, with the setting when the scenario overrides its defaults."""
    params = scenario.params.get(method)
    if params is None:
        return method
    default = DIFFUSION_METHODS.get(method).params_type()
    changed = {k: v for k, v in vars(params).items() if getattr(default, k) != v}
    return f"{method} ({', '.join(f'{k}={v:g}' if isinstance(v, float) else f'{k}={v}' for k, v in changed.items())})"


def target_lines(reports) -> list[str]:
    """The issue's targets, each judged over every scenario that bears on it."""
    lines = []
    for digits, need_all in ((1, False), (3, True)):
        chosen = [(s, r) for s, r in reports if len(r.erased_digits) == digits]
        if not chosen:
            continue
        meeting = [label(s, row.method) for s, r in chosen for row in r.methods if passes(row)]
        bases = sorted({m.split(" ")[0] for m in meeting})
        tried = sorted({row.method for _, r in chosen for row in r.methods})
        if need_all:
            closed = [m for m in tried if DIFFUSION_METHODS.get(m).closed_form]
            met = bool(closed) and set(closed) <= set(bases)
            rule = f"needs every closed-form method ({', '.join(closed)}) in some setting"
        else:
            met, rule = len(bases) >= 3, "needs three methods"
        lines.append(
            f"- {digits} digit{'s' if digits > 1 else ''}: meeting every bar (erased ≤ 5 % fit and held-out, other digits within 3 points, "
            f"FID ratio ≤ 1.10): {', '.join(meeting) or 'none'} — **{'met' if met else 'not met'}** ({rule})"
        )
        styled = [label(s, row.method) for s, r in chosen for row in r.methods if keeps_styles(row)]
        lines.append(
            f"  - of these, also erased when asked for in a stroke style and keeping every style of the other digits within 3 points "
            f"(the report's verdict; not among the issue's bars): {', '.join(styled) or 'none'}"
        )
    robust = [
        f"{label(s, row.method)} [{s.title}]" for s, r in reports for row in r.methods if max(row.attack_success.values()) <= 0.2
    ]
    lines.append(
        f"- every attack success rate ≤ 20 % for at least one method: {', '.join(robust) or 'none'} — **{'met' if robust else 'not met'}**"
    )
    for s, r in reports:
        for row in r.methods:
            limit = 5.0 if DIFFUSION_METHODS.get(row.method).closed_form else 900.0
            if row.method.startswith(("uce", "rece", "esd")):
                lines.append(
                    f"- {s.title}: {label(s, row.method)} took {row.seconds:.1f} s (limit {limit:g} s) — **{'met' if row.seconds <= limit else 'not met'}**"
                )
    return lines


def style_cell(drop: float | None) -> str:
    return "—" if drop is None else f"{0.0 - drop + 0.0:+.1f} pts"


def mark_rate_line(manifest: dict) -> str:
    """The mark-rate bar from ``testbed_quality.py``'s independent samples when they were measured on this UNet;
    else the manifest's check (whose samples share seeds across digits, so it is noisier than its count suggests)."""
    training = manifest["data"]["mark_rate"]
    measured = RESULTS / "testbed_quality.json"
    if measured.is_file():
        quality = json.loads(measured.read_text())
        if quality.get("unet_sha256") == manifest["sha256"]["unet.safetensors"]:
            prompted = quality["mark_rate"]["prompted"]
            low, high = prompted["wilson_95"]
            return (
                f"- mark rate in samples {prompted['rate']:.1%} (95 % interval {low:.1%} – {high:.1%}; {prompted['samples']:,} "
                f"samples at their own seeds, `testbed_quality.md`) vs {training:.1%} of training images — target within 5 "
                "points: " + ("**met**" if abs(prompted["rate"] - training) <= 0.05 else "**not met**")
            )
    chosen = manifest["quality"]["chosen"]
    shared = "" if chosen.get("distinct_seeds") else " (the manifest's check: every digit at the same seeds)"
    return (
        f"- mark rate in samples {chosen['mark_rate']:.1%}{shared} vs {training:.1%} of training images — target within 5 "
        "points: " + ("**met**" if abs(chosen["mark_rate"] - training) <= 0.05 else "**not met**")
    )


def style_judge_lines(manifest: dict) -> list[str]:
    quality = manifest["quality"]
    if "style_judge_test_accuracy" not in quality:
        return ["- no style judge: stroke-style preservation not measured"]
    drawn = quality["chosen"].get("style_accuracy", {})
    return [
        f"- style judge {quality['style_judge_test_accuracy']:.1%} on restyled MNIST test; asked for a style, the testbed draws it in "
        + ", ".join(f"{style} {rate:.0%}" for style, rate in drawn.items())
        + " of samples (every digit's fit phrasings)"
    ]


def selected(scenario: Scenario, method: str) -> bool:
    if scenario.methods == "all":
        return True
    if scenario.methods == "closed_form":
        return DIFFUSION_METHODS.get(method).closed_form
    return method in scenario.methods


def exact_reference(testbed, folder: Path):
    """The shipped testbed's UNet retrained without sevens (cached in ``folder``)."""
    from erasekit.training.diffusion_testbed import TestbedConfig, retrain_without_digits

    if not (folder / "manifest.json").is_file():
        print(f"retraining the UNet without sevens into {folder} (about 15 min)")
        config = TestbedConfig.from_manifest(testbed.manifest)
        retrain_without_digits(testbed, shared_data() / "mnist", (7,), folder, config)
    return load_testbed(folder)


def shared_data() -> Path:
    return Path(os.environ.get("ERASEKIT_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def spm_transfer(adapter, folder: Path, seeds_per_prompt: int) -> list[str]:
    """The "seven" adapter trained on the shipped testbed, applied to a testbed trained with seed 1."""
    from erasekit.audit.generative import digit_accuracy, sample_digits
    from erasekit.generative.spm import apply_adapter
    from erasekit.training.diffusion_testbed import TestbedConfig, train_testbed

    if not (folder / "manifest.json").is_file():
        print(f"training the seed-1 testbed into {folder} (about 20 min)")
        train_testbed(shared_data() / "mnist", folder, TestbedConfig(seed=1))
    other = load_testbed(folder)
    moved = apply_adapter(other, adapter.adapter_state(), adapter.rank, list(adapter.transport_prompts))
    seeds = list(range(seeds_per_prompt))
    before = digit_accuracy(other, sample_digits(other, other.unet, seeds))
    after = digit_accuracy(other, sample_digits(other, moved, seeds))
    drops = [(before[d].fit + before[d].held_out - after[d].fit - after[d].held_out) * 50 for d in range(10) if d != 7]
    lines = [
        '## SPM transfer: the shipped testbed\'s "seven" adapter on a testbed trained with seed 1',
        "",
        f"Seed-1 testbed: held-out accuracy {other.manifest['quality']['chosen']['mean_held_out_accuracy']:.1%} "
        f"(worst digit {other.manifest['quality']['chosen']['min_held_out_accuracy']:.1%}). Same adapter file, no retraining.",
        "",
        "| digit | seed-1 original, fit / held-out | with the transferred adapter, fit / held-out |",
        "|---|---:|---:|",
    ]
    for d in range(10):
        lines.append(
            f"| {d}{' (erased)' if d == 7 else ''} | {before[d].fit:.0%} / {before[d].held_out:.0%} | {after[d].fit:.0%} / {after[d].held_out:.0%} |"
        )
    lines += ["", f"Worst other-digit drop: {max(drops):+.1f} pts (mean of fit and held-out).", ""]
    return lines


if __name__ == "__main__":
    main()
