"""The text encoder's states precomputed on the CPU (MiniLM's weights exceed the device transfer limit)."""

import json
from pathlib import Path

import torch
from safetensors.torch import load_file

import erasekit.models.diffusion_testbed as dt
import erasekit.training.diffusion_testbed as tt

STATES = load_file(".gpu/text_states.safetensors")["states"]
PROMPTS = json.loads(Path(".gpu/text_prompts.json").read_text())


class StoredTextEncoder:
    def __init__(self, device="cpu"):
        self.device = torch.device(device)
        self.hidden_size = STATES.shape[-1]
        self._cache = {p: s.to(self.device) for p, s in zip(PROMPTS, STATES)}

    def encode(self, prompts):
        return torch.stack([self._cache[p] for p in prompts])


dt.TextEncoder = StoredTextEncoder
tt.TextEncoder = StoredTextEncoder
