"""Edited testbed folders: what an erasure writes (``erase --diffusion``) and how it loads again with the erasure applied.

Most methods change weights, so the folder's UNet is the edited one. SPM keeps the original UNet and
saves its adapter beside it; SAFREE keeps the original UNet and records its guard's settings; both
are re-applied on load.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

from torch import nn

from erasekit.generative.base import AdapterUNet, ConceptRequest, plain_unet
from erasekit.generative.safree import GuardedUNet, SAFREEParams, safree
from erasekit.generative.spm import apply_adapter
from erasekit.models.diffusion_testbed import Testbed


def edited_testbed_files(testbed: Testbed, unet: nn.Module, erased: dict) -> dict[str, bytes]:
    """A testbed folder (name → bytes) with ``unet`` in place of the original UNet and ``erased`` recorded in the manifest."""
    import json

    from safetensors.torch import save

    from erasekit.models.diffusion_testbed import ADAPTER_FILE, MANIFEST, WEIGHTS, component_files

    folder = Path(testbed.source if testbed.source != "testbed" else WEIGHTS)
    files = component_files(folder)
    erased = {**erased, "from_unet_sha256": testbed.manifest.get("sha256", {}).get("unet.safetensors", "")}
    if isinstance(unet, GuardedUNet):  # no weights changed: the original UNet, and the guard rebuilt on load
        unet_state = unet.unet.state_dict()
        erased["guard"] = {"method": "safree", "params": dataclasses.asdict(unet.params), "prompts": list(unet.prompts)}
    elif isinstance(unet, AdapterUNet):  # the original UNet plus the adapter file, applied again on load
        unet_state = plain_unet(testbed.unet).state_dict()
        files[ADAPTER_FILE] = save(unet.adapter_state())
        erased["adapter"] = {"file": ADAPTER_FILE, "rank": unet.rank, "transport_prompts": list(unet.transport_prompts)}
    else:
        unet_state = unet.state_dict()
    files["unet.safetensors"] = save({k: v.detach().contiguous() for k, v in unet_state.items()})
    manifest = dict(testbed.manifest)
    manifest["erased"] = erased
    manifest["sha256"] = {name: hashlib.sha256(payload).hexdigest() for name, payload in files.items()}
    files[MANIFEST] = (json.dumps(manifest, indent=2) + "\n").encode()
    return files


def load_edited_testbed(path: str | Path | None = None, device: str = "auto") -> Testbed:
    """A testbed folder as :func:`~erasekit.models.diffusion_testbed.load_testbed` loads it, with the erasure it records
    applied again: an SPM adapter (with facilitated transport) or a SAFREE guard around the original UNet."""
    from safetensors.torch import load_file

    from erasekit.core.errors import ModelError
    from erasekit.models.diffusion_testbed import load_testbed

    testbed = load_testbed(path, device)
    folder = Path(testbed.source)  # the shipped testbed records no erasure
    manifest = testbed.manifest
    guard = manifest.get("erased", {}).get("guard")
    if guard:  # a SAFREE-guarded testbed: the original UNet behind its text-state filter
        request = ConceptRequest(tuple(manifest["erased"].get("concepts", ["concept"])), tuple(guard["prompts"]))
        testbed.unet = safree(testbed, request, SAFREEParams(**guard["params"]))
    adapter = manifest.get("erased", {}).get("adapter")
    if adapter:  # an SPM-erased testbed: the original UNet with its adapter and facilitated transport
        try:
            state = load_file(folder / adapter["file"])
        except Exception as exc:
            raise ModelError(f"testbed file {folder / adapter['file']} cannot be loaded: {str(exc).splitlines()[0]}") from None
        testbed.unet = apply_adapter(testbed, state, int(adapter["rank"]), list(adapter.get("transport_prompts") or []))
    return testbed
