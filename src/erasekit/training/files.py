"""Model files: safetensors weights plus a JSON sidecar; never pickle.

``model.safetensors`` sits next to ``model.json``, which records the architecture, the
training recipe, the data it was trained on (spec and SHA-256) and the SHA-256 of the
weights file. Loading refuses a file whose hash does not match its sidecar.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from torch import nn

from erasekit.core.errors import ModelError
from erasekit.core.io import write_sibling_files
from erasekit.core.provenance import library_versions, sha256_state
from erasekit.models.zoo import ModelSpec
from erasekit.training.loop import Recipe

SIDECAR_FORMAT = "erasekit.model/1"


def sidecar_path(path: Path) -> Path:
    path = Path(path)
    if path.suffix != ".safetensors":
        raise ModelError(f"model files end in .safetensors, got {path}; e.g. --out model.safetensors")
    return path.with_suffix(".json")


@dataclass(frozen=True)
class SavedModel:
    """A loaded model file with its sidecar facts."""

    model: nn.Module
    spec: ModelSpec
    recipe: Recipe
    data_spec: str
    data_sha256: str
    seed: int
    weights_sha256: str
    # a model delivered by `unlearn --save-model`: the source rows it has forgotten so far (every request)
    forgotten_rows: tuple[int, ...] = ()


def save_model(
    model: nn.Module,
    path: Path,
    spec: ModelSpec,
    recipe: Recipe,
    data_spec: str,
    data_sha256: str,
    seed: int,
    metrics: dict[str, float] | None = None,
) -> Path:
    """Write weights and sidecar atomically; returns the sidecar path."""
    files = model_files(model, path, spec, recipe, data_spec, data_sha256, seed, metrics)
    write_sibling_files(files)  # both or neither
    return sidecar_path(Path(path))


def model_files(
    model: nn.Module,
    path: Path,
    spec: ModelSpec,
    recipe: Recipe,
    data_spec: str,
    data_sha256: str,
    seed: int,
    metrics: dict[str, float] | None = None,
    extra: dict | None = None,
) -> dict[Path, bytes]:
    """The weights file and its sidecar as bytes, to be written together (with other files, e.g. a receipt).

    ``extra`` adds sidecar fields (an unlearned model records what was forgotten).
    """
    path = Path(path)
    side = sidecar_path(path)
    payload = save_safetensors({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()})

    sidecar = {
        "format": SIDECAR_FORMAT,
        "architecture": spec.to_dict(),
        "recipe": recipe.to_dict(),
        "data": {"spec": data_spec, "sha256": data_sha256},
        "seed": seed,
        "weights_file_sha256": hashlib.sha256(payload).hexdigest(),
        "weights_sha256": sha256_state(model),
        "metrics": metrics or {},
        "versions": library_versions(),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        **(extra or {}),
    }
    return {path: payload, side: (json.dumps(sidecar, indent=2) + "\n").encode()}


def load_model(path: Path) -> SavedModel:
    """Load a model saved by :func:`save_model`, verifying the weights against the sidecar."""

    path = Path(path)
    if path.is_dir():  # a folder written by `unlearn --save-model`
        if not (path / "model.safetensors").is_file():
            raise ModelError(f"{path} is a folder without model.safetensors; give the model's .safetensors file")
        path = path / "model.safetensors"
    side = sidecar_path(path)
    if not path.is_file():
        raise ModelError(f"model file {path} does not exist")
    if not side.is_file():
        raise ModelError(f"model file {path} has no sidecar {side}; save models with `erasekit train`")
    try:
        sidecar = json.loads(side.read_text())
        if sidecar.get("format") != SIDECAR_FORMAT:
            raise ModelError(f"{side} is not an erasekit model sidecar (format {sidecar.get('format')!r})")
        spec = ModelSpec.from_dict(sidecar["architecture"])
        recipe = Recipe.from_dict(sidecar["recipe"])
        expected = sidecar["weights_file_sha256"]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ModelError(f"{side} is not a valid model sidecar ({exc!s}); re-save the model") from None
    payload = path.read_bytes()
    actual = hashlib.sha256(payload).hexdigest()
    if actual != expected:
        raise ModelError(
            f"{path} does not match its sidecar: sha256 {actual[:12]}… but {side.name} records {expected[:12]}…; "
            "the file was changed or corrupted — re-train or restore it"
        )
    try:
        state = load_safetensors(payload)
    except SafetensorError:
        raise ModelError(
            f"{path} is not a safetensors file (erasekit never unpickles); save models with `erasekit train`"
        ) from None
    model = spec.build()
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        detail = " ".join(line.strip() for line in str(exc).splitlines()[1:3])  # the first line only names the class
        raise ModelError(
            f"{path} does not fit architecture {spec.architecture} as its sidecar describes it: {detail[:300]}"
        ) from None
    return SavedModel(
        model=model,
        spec=spec,
        recipe=recipe,
        data_spec=sidecar["data"]["spec"],
        data_sha256=sidecar["data"]["sha256"],
        seed=int(sidecar.get("seed", 0)),
        weights_sha256=sha256_state(model),
        forgotten_rows=_forgotten_rows(sidecar, side),
    )


def _forgotten_rows(sidecar: dict, side: Path) -> tuple[int, ...]:
    unlearned = sidecar.get("unlearned") or {}
    rows = unlearned.get("forgotten_rows", []) if isinstance(unlearned, dict) else None
    if not isinstance(rows, list) or not all(isinstance(r, int) and not isinstance(r, bool) and r >= 0 for r in rows):
        raise ModelError(f"{side} records forgotten rows that are not a list of row numbers; restore the sidecar")
    return tuple(sorted(set(rows)))
