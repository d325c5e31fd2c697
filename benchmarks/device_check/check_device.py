# Run on the lent GPU machine from the repo root, with .gpu/ holding text_states.safetensors, text_prompts.json
# (the MiniLM token states computed on the CPU: its weights exceed the transfer limit), mnist/ and these two files.
"""GPU check: the testbed's UNet trains on the device (train_testbed, retrain_without_digits), and the same seed gives
the same draws on the CPU and the GPU (weights after a few steps agree to float tolerance)."""

import json
import os
import sys
import time

sys.path.insert(0, ".gpu")
import stored_text  # noqa
import torch
from pathlib import Path
from erasekit.training.diffusion_testbed import TestbedConfig, train_testbed, train_unet, retrain_without_digits
from erasekit.models.diffusion_testbed import load_testbed
from erasekit.core import rng

out = Path(os.environ.get("OUT", "/tmp/out"))
mnist = Path(".gpu/mnist")
# 1. same seed, CPU vs GPU: 5 steps on random latents
config = TestbedConfig(unet_steps=5, batch_size=16)
latents = torch.randn(64, 4, 8, 8, generator=rng.generator(1))
states = stored_text.STATES[:20]
ids = torch.randint(0, 19, (64,), generator=rng.generator(2))
cpu, _, cpu_losses = train_unet(latents, ids, states, config, rng.generator(3), "cpu")
gpu, _, gpu_losses = train_unet(latents, ids, states, config, rng.generator(3), "cuda")
diff = max(float((a - b.cpu()).abs().max()) for a, b in zip(cpu.state_dict().values(), gpu.state_dict().values()))
print("cpu losses", [round(x, 5) for x in cpu_losses], "gpu losses", [round(x, 5) for x in gpu_losses], "max weight diff", diff)
print("gpu unet device", next(gpu.parameters()).device)
# 2. a quick testbed trained with the UNet on the GPU
t = time.perf_counter()
quick = TestbedConfig(
    train_rows=3000, unet_steps=300, judge_epochs=1, guidance_sweep=(2.0,), sweep_seeds=2, eval_seeds=2, sampling_steps=10
)
manifest = train_testbed(mnist, Path("/tmp/bed"), quick, "cuda")
print(
    "train_testbed on cuda",
    round(time.perf_counter() - t, 1),
    "s",
    manifest["machine"],
    manifest["seconds"],
    "held-out",
    manifest["quality"]["chosen"]["mean_held_out_accuracy"],
)
bed = load_testbed("/tmp/bed", device="cpu")
print("loads on cpu; sample", tuple(bed.sample(["seven"], [0]).shape))
# 3. the exact reference retrained on the GPU
gbed = load_testbed("/tmp/bed", device="cuda")
t = time.perf_counter()
ref = retrain_without_digits(gbed, mnist, (7,), Path("/tmp/ref"), TestbedConfig(train_rows=3000, unet_steps=300, sweep_seeds=2))
print(
    "retrain_without_digits on cuda",
    round(time.perf_counter() - t, 1),
    "s; images",
    ref["reference"]["training_images"],
    "held-out",
    ref["quality"]["chosen"]["mean_held_out_accuracy"],
)
json.dump(
    {
        "weight_diff": diff,
        "manifest_machine": manifest["machine"],
        "seconds": manifest["seconds"],
        "reference_seconds": ref["seconds"],
    },
    (out / "device_check.json").open("w"),
    indent=1,
)
