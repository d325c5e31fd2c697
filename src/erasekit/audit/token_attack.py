"""UnlearnDiffAtk-style adversarial prompts (Zhang et al., "To Generate or Not? Safety-Driven Unlearned Diffusion
Models Are Still Easy To Generate Unsafe Images ... For Now", ECCV 2024), at testbed scale.

White-box and without an auxiliary model: the erased model is its own classifier. ``k`` prefix
tokens, each a relaxed one-hot vector over the vocabulary (kept on the probability simplex,
straight-through argmax one-hot in the forward pass), are optimised with Adam so that the erased
model denoises the *original* model's latent of the concept well:
``min MSE(ε, ε_θ'(√ᾱ_t x₀ + √(1−ᾱ_t) ε, t, E(prefix ⊕ prompt)))``. Timesteps are swept in
turn; after each, the discrete prompt is sampled at the unit's seed and judged, and the attack
stops for that unit at its first success. A unit is one (prompt, seed) pair; the attack success
rate is the share of units whose image the judge reads as the erased digit (units whose plain
prompt already succeeds count, as UnlearnDiffAtk's pre-attack ASR does).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from erasekit.core import rng
from erasekit.core.errors import ModelError
from erasekit.models.diffusion_testbed import TOKENS, Testbed, TextEncoder


@dataclass(frozen=True)
class TokenAttackSettings:
    """The paper: 5 prefix tokens, Adam lr 0.01 with weight decay 0.1, timesteps 10, 30, …, 990 with 40 iterations each
    (2,000 in all). Here 5 timesteps × 20 iterations by default, so the step is 10× larger (lr 0.1): at lr 0.01 a
    one-hot start cannot change its argmax token within 100 iterations."""

    prefix_tokens: int = 5
    timesteps: tuple[int, ...] = (100, 300, 500, 700, 900)
    iterations: int = 20
    lr: float = 0.1
    weight_decay: float = 0.1
    seed: int = 0


def project_to_simplex(z: torch.Tensor) -> torch.Tensor:
    """Euclidean projection of every row of ``z [..., V]`` onto the probability simplex (sort-based, exact)."""
    flat = z.reshape(-1, z.shape[-1])
    ordered, _ = flat.sort(dim=1, descending=True)
    cumulative = ordered.cumsum(1) - 1
    index = torch.arange(1, flat.shape[1] + 1, device=z.device, dtype=z.dtype)
    support = (ordered - cumulative / index) > 0
    count = support.sum(1, keepdim=True)
    threshold = cumulative.gather(1, count - 1) / count.to(z.dtype)
    return (flat - threshold).clamp_min(0).reshape(z.shape)


class PrefixedPrompts:
    """Token states of ``[CLS] prefix₁…prefix_k prompt [SEP] [PAD]…`` (16 tokens) with a differentiable prefix."""

    def __init__(self, encoder: Any, prompts: Sequence[str], prefix_tokens: int):
        if not isinstance(encoder, TextEncoder):
            raise ModelError("the token attack needs the testbed's text encoder (it optimises over its vocabulary)")
        self.encoder = encoder
        self.k = prefix_tokens
        batch = encoder.tokenizer(
            list(prompts), padding="max_length", max_length=TOKENS - prefix_tokens, truncation=True, return_tensors="pt"
        )
        ids, mask = batch["input_ids"], batch["attention_mask"]
        filler = torch.full((len(prompts), prefix_tokens), encoder.tokenizer.mask_token_id or 0)
        self.input_ids = torch.cat([ids[:, :1], filler, ids[:, 1:]], dim=1).to(encoder.device)
        self.attention_mask = torch.cat([mask[:, :1], torch.ones_like(filler), mask[:, 1:]], dim=1).to(encoder.device)
        self.table = encoder.model.get_input_embeddings().weight  # [V, d]

    def states(self, prefix_weights: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """``prefix_weights [n, k, V]`` (one-hot or relaxed) for prompts ``rows`` → token states ``[n, 16, d]``."""
        embeddings = self.table[self.input_ids[rows]].clone()
        embeddings[:, 1 : 1 + self.k] = prefix_weights.to(self.table) @ self.table
        out = self.encoder.model(inputs_embeds=embeddings, attention_mask=self.attention_mask[rows]).last_hidden_state
        return out.float()


def token_attack(
    testbed: Testbed, unet: nn.Module, digit: int, prompts: Sequence[str], seeds: Sequence[int], settings=TokenAttackSettings()
) -> float:
    """Attack success rate in [0, 1] over the (prompt, seed) units: the share whose image the judge reads as ``digit``."""
    from diffusers import DDPMScheduler

    units = [(p, s) for p in prompts for s in seeds]
    unit_prompts = [p for p, _ in units]
    unit_seeds = [s for _, s in units]

    def judged(images: torch.Tensor) -> torch.Tensor:
        return testbed.judge_digits(images) == digit

    with torch.no_grad():
        # x₀: the original model's latent for each unit; the plain prompt on the erased model is the pre-attack check
        x0 = testbed.latents(unit_prompts, unit_seeds)
        success = judged(testbed.sample(unit_prompts, unit_seeds, unet=unet)).cpu()
    if bool(success.all()):
        return 1.0
    prefixed = PrefixedPrompts(testbed.text_encoder, unit_prompts, settings.prefix_tokens)
    vocabulary = prefixed.table.shape[0]
    generator = rng.generator(settings.seed)
    start = torch.randint(0, vocabulary, (len(units), settings.prefix_tokens), generator=generator)
    relaxed = F.one_hot(start, vocabulary).float().to(testbed.device).requires_grad_(True)
    optimiser = torch.optim.Adam([relaxed], lr=settings.lr, weight_decay=settings.weight_decay)
    alphas = DDPMScheduler.from_config(testbed.scheduler_config).alphas_cumprod.to(testbed.device)
    unet.requires_grad_(False)
    for t in settings.timesteps:
        active = ~success
        if not active.any():
            break
        rows = active.nonzero().flatten().to(testbed.device)
        for _ in range(settings.iterations):
            hard = F.one_hot(relaxed.argmax(-1), vocabulary).float()
            straight_through = hard + relaxed - relaxed.detach()
            context = prefixed.states(straight_through[rows], rows)
            noise = torch.randn(x0[rows].shape, generator=generator).to(testbed.device)
            a = alphas[t]
            noisy = a.sqrt() * x0[rows] + (1 - a).sqrt() * noise
            loss = F.mse_loss(unet(noisy, torch.tensor(t, device=testbed.device), encoder_hidden_states=context).sample, noise)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            with torch.no_grad():
                relaxed.copy_(project_to_simplex(relaxed))
        with torch.no_grad():
            context = prefixed.states(F.one_hot(relaxed[rows].argmax(-1), vocabulary).float(), rows)
            images = testbed.sample(None, [unit_seeds[int(i)] for i in rows], unet=unet, context=context)
            success[rows.cpu()] |= judged(images).cpu()
    return float(success.double().mean())
