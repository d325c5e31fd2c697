"""Sharded exact unlearning (SISA) with a deletion-request ledger.

``train_sisa`` builds a model directory; ``ShardedModel.open(dir)`` files requests, processes
them (retraining only the affected shards), answers questions about versions and requests,
and gives the aggregated predictor. See the README section "Deletion requests at scale".
"""

from __future__ import annotations

import importlib

# Loaded on first use, so `import erasekit.unlearn` (whose `sisa` method uses only the sharding
# module) does not pay ~0.35 s for SQLAlchemy and the ledger.
_EXPORTS = {
    "BACKENDS": "backends", "Execution": "backends",
    "DeletionRequest": "ledger", "Ledger": "ledger", "LedgerEvent": "ledger", "ModelVersion": "ledger",
    "redact": "ledger",
    "DataSource": "service", "ProcessOutcome": "service", "ShardedModel": "service", "TrainedSISA": "service",
    "train_sisa": "service",
    "AGGREGATIONS": "sharding", "Assignment": "sharding", "SISAEnsemble": "sharding", "ShardConfig": "sharding",
    "CorruptCheckpoint": "store", "ModelDirectory": "store",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'erasekit.ledger' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"erasekit.ledger.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
