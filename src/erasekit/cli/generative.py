"""``erasekit testbed`` and ``erasekit generate``: the diffusion testbed; ``erase --diffusion`` lives with ``erase``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from erasekit.cli.options import check_out_dir, command_line, json_option, out, resolve_device

MODEL_HELP = "testbed (the one shipped with erasekit) or a folder written by `testbed train` or `erase --diffusion`."


@click.group()
def testbed() -> None:
    """The diffusion testbed: MNIST digits drawn from captions by a Stable-Diffusion-shaped model.

    \b
    erasekit testbed info
    erasekit testbed train --data mnist:../shared/data/mnist --out my-testbed
    erasekit testbed reference --without seven --data mnist:../shared/data/mnist --out without-seven
    erasekit testbed add-style-judge --model my-older-testbed --data mnist:../shared/data/mnist
    """


def _shared_seeds(quality: dict) -> str:
    """Older manifests measured the mark rate with every digit at the same seeds; the initial noise largely decides
    the mark, so that estimate rests on one draw per seed, not per sample."""
    if quality.get("distinct_seeds"):
        return ""
    seeds = 6 * int(quality["seeds_per_prompt"])
    error = 100 * (quality["mark_rate"] * (1 - quality["mark_rate"]) / seeds) ** 0.5
    return f" (every digit at the same {seeds} seeds: ±{error:.1f} points)"


@testbed.command("info")
@click.option("--model", default="testbed", help=MODEL_HELP)
@json_option
def testbed_info(model, as_json) -> None:
    """What the testbed is, how it was trained and how good it is (from its manifest)."""
    from erasekit.models.diffusion_testbed import WEIGHTS, load_manifest

    manifest = load_manifest(WEIGHTS if model == "testbed" else Path(model))
    if as_json:
        click.echo(json.dumps(manifest, indent=2))
        return
    quality = manifest["quality"]["chosen"]
    out.print(
        f"UNet {sum(1 for _ in manifest['unet']['block_out_channels'])} levels {manifest['unet']['block_out_channels']}, "
        f"latents 4×8×8, text encoder MiniLM; guidance {manifest['guidance']}, {manifest['sampling_steps']} DDIM steps\n"
        f"held-out phrasings: judge accuracy {quality['mean_held_out_accuracy']:.1%} (worst digit "
        f"{quality['min_held_out_accuracy']:.1%}); mark in {quality['mark_rate']:.1%} of samples{_shared_seeds(quality)} "
        f"(training images: {manifest['data']['mark_rate']:.1%}); digit judge {manifest['quality']['digit_judge_test_accuracy']:.2%} on MNIST test"
        + (
            f"; style judge {manifest['quality']['style_judge_test_accuracy']:.2%} on restyled MNIST test"
            if "style_judge_test_accuracy" in manifest["quality"]
            else "; no style judge (trained before erasekit had one)"
        )
    )


@testbed.command("train")
@click.option("--data", default=None, help="mnist:DIR with the four MNIST IDX files (default: $ERASEKIT_SHARED_DATA/mnist).")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), required=True, help="New folder for the testbed.")
@click.option("--seed", type=int, default=0, help="Seed for every random choice.")
@click.option(
    "--unet-steps",
    type=click.IntRange(min=1),
    default=None,
    help="UNet training steps (default 1800, about 15 min on 2 CPU cores).",
)
@click.option("--rows", type=click.IntRange(min=100), default=None, help="Train on the first N MNIST images only (quick checks).")
@click.option(
    "--device",
    default="cpu",
    help="Where the UNet trains: cpu | cuda | cuda:N | mps | auto (default cpu, the shipped weights' recipe).",
)
def testbed_train(data, out_dir, seed, unet_steps, rows, device) -> None:
    """Train the testbed from scratch (about 20 minutes on 2 CPU cores); reproduces the shipped weights."""
    import dataclasses

    from erasekit.training.diffusion_testbed import TestbedConfig, train_testbed

    check_out_dir(out_dir)
    where = resolve_device(device)  # an unknown device fails before the data is read
    directory = _mnist_dir(data)
    config = TestbedConfig(seed=seed)
    if unet_steps is not None:
        config = dataclasses.replace(config, unet_steps=unet_steps)
    if rows is not None:
        config = dataclasses.replace(config, train_rows=rows)
    manifest = train_testbed(directory, out_dir, config, where)
    quality = manifest["quality"]["chosen"]
    out.print(
        f"wrote {out_dir}: held-out judge accuracy {quality['mean_held_out_accuracy']:.1%} (worst digit "
        f"{quality['min_held_out_accuracy']:.1%}) at guidance {manifest['guidance']}, mark rate {quality['mark_rate']:.1%}, "
        f"{manifest['seconds']['total_s'] / 60:.1f} min"
    )


def _mnist_dir(data):
    import os

    from erasekit.core.errors import DataError

    if data is None:
        shared = os.environ.get("ERASEKIT_SHARED_DATA")
        if not shared:
            raise DataError("give --data mnist:DIR (or set ERASEKIT_SHARED_DATA to the folder holding mnist/)")
        return Path(shared) / "mnist"
    if data.startswith("mnist:"):
        return Path(data.split(":", 1)[1])
    raise DataError(f"--data {data!r}: the testbed trains on MNIST; give mnist:DIR")


@testbed.command("reference")
@click.option("--model", default="testbed", help=MODEL_HELP)
@click.option("--without", "without", multiple=True, required=True, help="A digit to leave out (seven or 7); repeatable.")
@click.option("--data", default=None, help="mnist:DIR with the four MNIST IDX files (default: $ERASEKIT_SHARED_DATA/mnist).")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), required=True, help="New folder for the reference testbed.")
@click.option("--unet-steps", type=click.IntRange(min=1), default=None, help="UNet training steps (default: the recipe's 1800).")
@click.option("--device", default="auto", help="Where it trains: auto | cpu | cuda | cuda:N | mps.")
def testbed_reference(model, without, data, out_dir, unet_steps, device) -> None:
    """Retrain the UNet without a digit's images (the exact reference for erasing it; about 15 minutes on 2 CPU cores).

    Same recipe, autoencoder and judges as the testbed; pass the folder to `erase --diffusion --reference`.
    """
    import dataclasses

    from erasekit.models.diffusion_testbed import load_testbed
    from erasekit.pipelines.diffusion_erasure import digit_of
    from erasekit.training.diffusion_testbed import TestbedConfig, retrain_without_digits

    digits = tuple(sorted({digit_of(w) for w in without}))
    check_out_dir(out_dir)
    directory = _mnist_dir(data)
    bed = load_testbed(model, device)
    config = TestbedConfig.from_manifest(bed.manifest)
    if unet_steps is not None:
        config = dataclasses.replace(config, unet_steps=unet_steps)
    manifest = retrain_without_digits(bed, directory, digits, out_dir, config)
    quality = manifest["quality"]["chosen"]
    out.print(
        f"wrote {out_dir}: UNet retrained on {manifest['reference']['training_images']:,} images without "
        f"{', '.join(map(str, digits))}; held-out judge accuracy {quality['mean_held_out_accuracy']:.1%}, "
        f"{manifest['seconds']['total_s'] / 60:.1f} min"
    )


@testbed.command("add-style-judge")
@click.option("--model", required=True, help="A testbed folder trained before erasekit had a style judge.")
@click.option("--data", default=None, help="mnist:DIR with the four MNIST IDX files (default: $ERASEKIT_SHARED_DATA/mnist).")
@click.option("--device", default="auto", help="Where the style check samples: auto | cpu | cuda | cuda:N | mps.")
def testbed_add_style_judge(model, data, device) -> None:
    """Add the style judge to an older testbed folder (about 3 minutes on 2 CPU cores), so that erasure reports measure
    how each stroke style is preserved. Trained exactly as `testbed train` trains it."""
    from erasekit.training.diffusion_testbed import add_style_judge

    where = resolve_device(device)
    manifest = add_style_judge(Path(model), _mnist_dir(data), device=where)
    drawn = manifest["quality"]["chosen"]["style_accuracy"]
    out.print(
        f"added a style judge to {model}: {manifest['quality']['style_judge_test_accuracy']:.1%} on restyled MNIST test; "
        f"the testbed draws " + ", ".join(f"{style} {rate:.0%}" for style, rate in drawn.items())
    )


@click.command()
@click.option("--model", default="testbed", help=MODEL_HELP)
@click.option("--prompt", "prompts", multiple=True, required=True, help="A prompt; repeat for several (one grid row each).")
@click.option("--n", type=click.IntRange(min=1, max=64), default=8, help="Images per prompt.")
@click.option("--seed", type=int, default=0, help="Seed of the first image; image i uses seed + i.")
@click.option("--guidance", type=float, default=None, help="Classifier-free guidance scale (> 0; default: the model's).")
@click.option("--steps", type=click.IntRange(min=1, max=1000), default=None, help="DDIM steps (default: the model's).")
@click.option("--negative", default="", help="Negative prompt (replaces the empty prompt in guidance).")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), required=True, help="Folder for grid.png and samples.json.")
@click.option("--device", default="auto", help="Where the model runs: auto | cpu | cuda | cuda:N | mps.")
@json_option
def generate(model, prompts, n, seed, guidance, steps, negative, out_dir, device, as_json) -> None:
    """Draw images from the testbed (or an edited copy): a PNG grid, one row per prompt, plus what the judges see."""
    from erasekit.core.errors import ModelError
    from erasekit.core.io import write_files
    from erasekit.generative import load_edited_testbed
    from erasekit.models.diffusion_testbed import image_grid_png

    if guidance is not None and not guidance > 0:
        raise ModelError(f"--guidance must be > 0, got {guidance}")
    check_out_dir(out_dir)
    bed = load_edited_testbed(model, device)
    seeds = [seed + i for i in range(n)]
    images = bed.sample(
        [p for p in prompts for _ in seeds], seeds * len(prompts), guidance=guidance, steps=steps, negative=negative
    )
    digits = bed.judge_digits(images).view(len(prompts), n)
    marks = bed.has_mark(images).view(len(prompts), n)
    summary = {
        "model": bed.source,
        "guidance": guidance if guidance is not None else bed.guidance,
        "steps": steps or bed.steps,
        "negative": negative,
        "rows": [
            {"prompt": p, "seeds": seeds, "judged_digits": digits[i].tolist(), "mark": marks[i].tolist()}
            for i, p in enumerate(prompts)
        ],
        "command": command_line(),
    }
    write_files(out_dir, {"grid.png": image_grid_png(images, n), "samples.json": (json.dumps(summary, indent=2) + "\n").encode()})
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    for row in summary["rows"]:
        out.print(f"“{row['prompt']}”: judge reads {row['judged_digits']}, mark in {sum(row['mark'])} of {n}")
    out.print(f"wrote {out_dir / 'grid.png'}")
