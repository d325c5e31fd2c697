"""An on-disk cache of trained models: originals, exact retrain references and shadow models.

Retraining is the expensive part of every unlearning audit (the reference, the noise-floor
retrain, the shadow models of a membership attack, the proxy deletion that tuning uses). A
model that is a function of (training data, which examples it saw, recipe, seed,
architecture) is trained once and reused across requests, methods and runs: the entry's file
name is the SHA-256 of that key. Entries are safetensors weights plus a JSON record holding the
key, the weights' hash and the training cost (so a reused reference still reports the seconds
it took to train, and speed-ups stay honest). Loading refuses an entry whose weights do not
match its record or whose record does not match the key that found it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from torch import nn

from erasekit.core.errors import CacheError
from erasekit.core.io import write_sibling_files
from erasekit.core.provenance import now_utc, sha256_arrays
from erasekit.core.resources import measure

CACHE_FORMAT = "erasekit.model-cache/1"


def architecture_signature(model: nn.Module) -> str:
    """SHA-256 of the module tree (its ``repr``, which names layers and activations) and every tensor's name, shape and dtype."""
    digest = hashlib.sha256(repr(model).encode())
    for name, tensor in model.state_dict().items():
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class ModelKey:
    """What determines a trained model: ``role`` (``original``, ``retrain`` …), the training data's
    hash, the hash of the positions it trained on, the recipe (as a dict), the seed and the architecture."""

    role: str
    data_sha256: str
    examples_sha256: str
    recipe: dict
    seed: int
    architecture: str

    @classmethod
    def for_model(cls, role: str, data_sha256: str, positions, recipe: dict, seed: int, model: nn.Module) -> ModelKey:
        """The key of ``model``'s architecture trained on ``positions`` of the data with ``recipe`` and ``seed``."""
        return cls(role, data_sha256, sha256_arrays(np.asarray(positions)), recipe, seed, architecture_signature(model))

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True, default=str).encode()).hexdigest()


@dataclass(frozen=True)
class CachedModel:
    """A model from the cache (``hit``) or just trained and stored. ``seconds`` and
    ``peak_memory_mb`` are the cost of training it, measured when it was trained."""

    model: nn.Module
    seconds: float
    peak_memory_mb: float
    hit: bool
    path: Path


class ModelCache:
    """Trained models on disk under ``root``, keyed by :class:`ModelKey`."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.hits = 0
        self.misses = 0

    def path_for(self, key: ModelKey) -> Path:
        digest = key.digest()
        return self.root / digest[:2] / f"{digest}.safetensors"

    def get_or_train(self, key: ModelKey, template: Callable[[], nn.Module], train: Callable[[], nn.Module]) -> CachedModel:
        """The cached model for ``key`` loaded into ``template()``, or ``train()`` timed and stored."""
        path = self.path_for(key)
        if path.exists():
            model, seconds, peak = self._load(path, key, template())
            self.hits += 1
            return CachedModel(model, seconds, peak, hit=True, path=path)
        with measure() as cost:
            model = train()
        self._store(path, key, model, cost.seconds, cost.peak_memory_mb)
        self.misses += 1
        return CachedModel(model, cost.seconds, cost.peak_memory_mb, hit=False, path=path)

    def _store(self, path: Path, key: ModelKey, model: nn.Module, seconds: float, peak_memory_mb: float) -> None:
        payload = save_safetensors({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()})
        record = {
            "format": CACHE_FORMAT,
            "key": asdict(key),  # for people reading the cache; loading checks the digest
            "key_sha256": key.digest(),
            "weights_file_sha256": hashlib.sha256(payload).hexdigest(),
            "seconds": seconds,
            "peak_memory_mb": peak_memory_mb,
            "created_at": now_utc(),
        }
        write_sibling_files(
            {path: payload, path.with_suffix(".json"): (json.dumps(record, indent=2, default=str) + "\n").encode()}
        )

    @staticmethod
    def _load(path: Path, key: ModelKey, model: nn.Module) -> tuple[nn.Module, float, float]:
        fix = f"delete {path} and {path.with_suffix('.json').name} (the model is retrained on the next run)"
        try:
            record = json.loads(path.with_suffix(".json").read_text())
            stored_key, expected = record["key_sha256"], record["weights_file_sha256"]
            seconds, peak = float(record["seconds"]), float(record["peak_memory_mb"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CacheError(f"cache entry {path} has no valid record ({exc!s}); {fix}") from None
        if record.get("format") != CACHE_FORMAT or stored_key != key.digest():
            raise CacheError(f"cache entry {path} was stored for another model than the one requested; {fix}")
        payload = path.read_bytes()
        if hashlib.sha256(payload).hexdigest() != expected:
            raise CacheError(f"cache entry {path} does not match its record's SHA-256 (changed or corrupted); {fix}")
        try:
            model.load_state_dict(load_safetensors(payload))
        except (SafetensorError, RuntimeError) as exc:
            raise CacheError(f"cache entry {path} does not fit the model: {str(exc).splitlines()[0]}; {fix}") from None
        model.eval()
        return model, seconds, peak
