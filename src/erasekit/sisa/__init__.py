"""The SISA sharding engine (Bourtoule et al., "Machine Unlearning", IEEE S&P 2021), with no database.

:mod:`~erasekit.sisa.sharding` assigns examples to shards and slices, trains a shard over its
slices and aggregates the shard models; :mod:`~erasekit.sisa.backends` runs shard jobs in this
process, a local process pool or Ray. The in-memory unlearning method is ``unlearn(task,
"sisa")``; files, requests and versions are :mod:`erasekit.ledger`.
"""

from erasekit.sisa.backends import BACKENDS, Execution, run_jobs
from erasekit.sisa.sharding import AGGREGATIONS, Assignment, ShardConfig, SISAEnsemble

__all__ = ["AGGREGATIONS", "BACKENDS", "Assignment", "Execution", "SISAEnsemble", "ShardConfig", "run_jobs"]
