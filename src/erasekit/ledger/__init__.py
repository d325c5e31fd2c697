"""Sharded exact unlearning (SISA) on disk with a deletion-request ledger (SQLAlchemy; ``erasekit[ledger]``).

``train_sisa`` builds a model directory; ``ShardedModel.open(dir)`` files requests, processes
them (retraining only the affected shards), answers questions about versions and requests,
and gives the aggregated predictor. See the README section "Deletion requests at scale".
"""

from erasekit.core.extras import require

require("sqlalchemy", "the deletion-request ledger")
require("alembic", "the deletion-request ledger")

from erasekit.ledger.ledger import DeletionRequest, Ledger, LedgerEvent, ModelVersion, redact  # noqa: E402
from erasekit.ledger.service import DataSource, ProcessOutcome, ShardedModel, TrainedSISA, train_sisa  # noqa: E402
from erasekit.ledger.store import CorruptCheckpoint, ModelDirectory  # noqa: E402
from erasekit.sisa import AGGREGATIONS, BACKENDS, Assignment, Execution, ShardConfig, SISAEnsemble  # noqa: E402

__all__ = [
    "AGGREGATIONS",
    "BACKENDS",
    "Assignment",
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
