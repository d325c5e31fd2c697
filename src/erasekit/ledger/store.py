"""A SISA model directory: manifest, assignment and content-hashed shard checkpoints.

::

    DIR/sisa.json                          what was trained, on which data (sha256), with what
    DIR/assignment.safetensors             example id → (shard, slice); its sha256 is in sisa.json
    DIR/checkpoints/shard-003/slice-1-<sha256[:16]>.safetensors

Checkpoints are written to a temp file, fsynced and renamed, and named by their content hash,
so a version never overwrites another version's file and a half-written file never carries a
final name. Every load re-hashes the file against the hash the ledger recorded.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.numpy import load as load_arrays
from safetensors.numpy import save as save_arrays
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from erasekit.core.errors import DataError, ModelError
from erasekit.core.io import atomic_write_bytes, atomic_write_text
from erasekit.core.provenance import library_versions
from erasekit.models.zoo import ModelSpec
from erasekit.sisa.sharding import Assignment, ShardConfig, State
from erasekit.training import Recipe

MANIFEST_FORMAT = "erasekit.sisa/1"
MANIFEST = "sisa.json"
ASSIGNMENT = "assignment.safetensors"
DEFAULT_DB_FILE = "ledger.sqlite"


class CorruptCheckpoint(ModelError):
    """A checkpoint file is missing or does not match the hash the ledger recorded for it."""


@dataclass(frozen=True)
class CheckpointRef:
    """One stored checkpoint: shard, slice and the sha256 of the file's bytes."""

    shard: int
    slice: int
    sha256: str

    def relative_path(self) -> str:
        return f"checkpoints/shard-{self.shard:03d}/slice-{self.slice}-{self.sha256[:16]}.safetensors"


@dataclass(frozen=True)
class Manifest:
    """The contents of ``sisa.json``."""

    model_id: str
    data_spec: str  # as `load_data` takes it, paths absolute
    data_target: str | None
    data_subset: int | None
    data_sha256: str
    spec: ModelSpec
    config: ShardConfig
    num_shards: int
    num_slices: int
    assignment_sha256: str
    created_at: str

    def to_dict(self) -> dict:
        return {
            "format": MANIFEST_FORMAT,
            "model_id": self.model_id,
            "data": {"spec": self.data_spec, "target": self.data_target, "subset": self.data_subset, "sha256": self.data_sha256},
            "architecture": self.spec.to_dict(),
            "recipe": self.config.recipe.to_dict(),
            "seed": self.config.seed,
            "aggregation": self.config.aggregation,
            "shards": self.num_shards,
            "slices": self.num_slices,
            "stage_epochs": self.config.stage_epochs(self.num_slices),
            "assignment_sha256": self.assignment_sha256,
            "created_at": self.created_at,
            "versions": library_versions(),
        }

    @classmethod
    def from_dict(cls, data: dict, where: Path) -> Manifest:
        if data.get("format") != MANIFEST_FORMAT:
            raise ModelError(f"{where} is not a SISA model manifest (format {data.get('format')!r})")
        spec = ModelSpec.from_dict(data["architecture"])
        config = ShardConfig(
            spec=spec, recipe=Recipe.from_dict(data["recipe"]), seed=int(data["seed"]), aggregation=data["aggregation"]
        )
        return cls(
            model_id=str(data["model_id"]),
            data_spec=str(data["data"]["spec"]),
            data_target=data["data"].get("target"),
            data_subset=data["data"].get("subset"),
            data_sha256=str(data["data"]["sha256"]),
            spec=spec,
            config=config,
            num_shards=int(data["shards"]),
            num_slices=int(data["slices"]),
            assignment_sha256=str(data["assignment_sha256"]),
            created_at=str(data["created_at"]),
        )


class ModelDirectory:
    """Reads and writes one SISA model directory (no database access here)."""

    def __init__(self, root: Path):
        self.root = Path(root)

    @property
    def default_db_url(self) -> str:
        return f"sqlite:///{(self.root / DEFAULT_DB_FILE).resolve()}"

    def exists(self) -> bool:
        return (self.root / MANIFEST).is_file()

    # -- creation -------------------------------------------------------------------------
    @staticmethod
    def new_manifest(
        data_spec: str,
        data_target: str | None,
        data_subset: int | None,
        data_sha256: str,
        config: ShardConfig,
        assignment: Assignment,
    ) -> Manifest:
        if config.spec is None:
            raise ModelError("a SISA model directory needs the shard architecture (ShardConfig.spec) to rebuild its models")
        return Manifest(
            model_id=str(uuid.uuid4()),
            data_spec=data_spec,
            data_target=data_target,
            data_subset=data_subset,
            data_sha256=data_sha256,
            spec=config.spec,
            config=config,
            num_shards=assignment.num_shards,
            num_slices=assignment.num_slices,
            assignment_sha256=assignment.sha256(),
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )

    def write_manifest(self, manifest: Manifest, assignment: Assignment) -> None:
        tensors = {
            "example_ids": torch.as_tensor(assignment.example_ids),
            "shard": torch.as_tensor(assignment.shard),
            "slice": torch.as_tensor(assignment.slice),
        }
        meta = {"shards": str(assignment.num_shards), "slices": str(assignment.num_slices), "seed": str(assignment.seed)}
        atomic_write_bytes(self.root / ASSIGNMENT, save_safetensors(tensors, metadata=meta))
        atomic_write_text(self.root / MANIFEST, json.dumps(manifest.to_dict(), indent=2) + "\n")

    # -- reading --------------------------------------------------------------------------
    def manifest(self) -> Manifest:
        path = self.root / MANIFEST
        if not self.root.is_dir():
            raise ModelError(
                f"model directory {self.root} does not exist; create one with `erasekit sisa train --out {self.root}`"
            )
        if not path.is_file():
            raise ModelError(f"{self.root} is not a SISA model directory (no {MANIFEST}); create one with `erasekit sisa train`")
        try:
            return Manifest.from_dict(json.loads(path.read_text()), path)
        except ModelError:
            raise
        except (ValueError, KeyError, TypeError) as exc:
            raise ModelError(f"{path} is not a valid SISA manifest ({exc!s}); restore it from a backup") from None

    def assignment(self, manifest: Manifest) -> Assignment:
        path = self.root / ASSIGNMENT
        if not path.is_file():
            raise DataError(f"{path} is missing; the shards cannot be mapped without it — restore it from a backup")
        problem = "its sha256 does not match sisa.json"
        try:
            tensors = load_safetensors(path.read_bytes())
            assignment = Assignment(
                example_ids=tensors["example_ids"].numpy(),
                shard=tensors["shard"].numpy(),
                slice=tensors["slice"].numpy(),
                num_shards=manifest.num_shards,
                num_slices=manifest.num_slices,
                seed=manifest.config.seed,
            )
            if assignment.sha256() == manifest.assignment_sha256:
                return assignment
        except (SafetensorError, KeyError, DataError, RuntimeError, ValueError) as exc:
            problem = f"it cannot be read ({str(exc).splitlines()[0]})"
        raise DataError(
            f"assignment file {path} is corrupted: {problem}; restore it from a backup — "
            "without it no deletion can be mapped to its shard"
        )

    # -- checkpoints ----------------------------------------------------------------------
    def write_checkpoint(
        self, shard: int, slice_: int, state: State, parent: str | None, trained_ids: np.ndarray, excluded_ids: np.ndarray
    ) -> CheckpointRef:
        """Store a shard checkpoint; the file records its parent and exactly which ids it excluded."""
        metadata = {
            "shard": str(shard),
            "slice": str(slice_),
            "parent_sha256": parent or "init",
            "num_trained": str(len(trained_ids)),
            "excluded_ids": json.dumps(sorted(int(i) for i in excluded_ids)),
        }
        # one metadata key: safetensors writes a multi-key metadata map in no fixed order, which
        # would give equal checkpoints different hashes
        payload = save_arrays(
            {k: np.ascontiguousarray(v) for k, v in state.items()}, metadata={"erasekit": json.dumps(metadata, sort_keys=True)}
        )
        ref = CheckpointRef(shard, slice_, hashlib.sha256(payload).hexdigest())
        path = self.root / ref.relative_path()
        if not (path.is_file() and self._hash(path) == ref.sha256):  # content-addressed: same name, same bytes
            atomic_write_bytes(path, payload)
        return ref

    @staticmethod
    def _hash(path: Path) -> str:
        return hashlib.sha256(path.read_bytes()).hexdigest()

    def verify(self, ref: CheckpointRef) -> bool:
        path = self.root / ref.relative_path()
        return path.is_file() and self._hash(path) == ref.sha256

    def read_checkpoint(self, ref: CheckpointRef) -> tuple[State, dict[str, str]]:
        """The state and metadata of a checkpoint, after checking its hash."""
        path = self.root / ref.relative_path()
        if not path.is_file():
            raise CorruptCheckpoint(f"checkpoint {path} is missing")
        payload = path.read_bytes()
        actual = hashlib.sha256(payload).hexdigest()
        if actual != ref.sha256:
            raise CorruptCheckpoint(
                f"checkpoint {path} is corrupted: sha256 {actual[:12]}… but the ledger recorded {ref.sha256[:12]}…"
            )
        try:
            return load_arrays(payload), _metadata(payload)
        except (SafetensorError, ValueError) as exc:  # hash matched but unreadable: written by something else
            raise CorruptCheckpoint(f"checkpoint {path} cannot be read: {str(exc).splitlines()[0]}") from None


def _metadata(payload: bytes) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors payload (an 8-byte length, then a JSON header)."""
    length = int.from_bytes(payload[:8], "little")
    packed = json.loads(payload[8 : 8 + length]).get("__metadata__", {}).get("erasekit", "{}")
    return json.loads(packed)
