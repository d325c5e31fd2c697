"""Sharded exact unlearning (SISA) with a deletion-request ledger.

``train_sisa`` builds a model directory; ``ShardedModel.open(dir)`` files requests, processes
them (retraining only the affected shards), answers questions about versions and requests,
and gives the aggregated predictor. See the README section "Deletion requests at scale".
"""

from erasekit.ledger.backends import BACKENDS, Execution
from erasekit.ledger.ledger import DeletionRequest, Ledger, LedgerEvent, ModelVersion, redact
from erasekit.ledger.service import DataSource, ProcessOutcome, ShardedModel, TrainedSISA, train_sisa
from erasekit.ledger.sharding import AGGREGATIONS, Assignment, SISAEnsemble, ShardConfig
from erasekit.ledger.store import CorruptCheckpoint, ModelDirectory

__all__ = [
    "AGGREGATIONS",
    "Assignment",
    "BACKENDS",
    "CorruptCheckpoint",
    "DataSource",
    "DeletionRequest",
    "Execution",
    "Ledger",
    "LedgerEvent",
    "ModelDirectory",
    "ModelVersion",
    "ProcessOutcome",
    "SISAEnsemble",
    "ShardConfig",
    "ShardedModel",
    "TrainedSISA",
    "redact",
    "train_sisa",
]
