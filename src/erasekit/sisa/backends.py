"""Where shard retraining runs: in this process, a local process pool, or Ray tasks.

Every backend takes the same picklable :class:`~erasekit.sisa.sharding.ShardJob` list and
yields ``(job, stage results)`` as shards finish, so the caller can report progress and
renew its lease between shards.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, replace
from typing import Literal

from erasekit.core.errors import ErasekitError
from erasekit.core.extras import require
from erasekit.sisa.sharding import ShardJob, StageResult, run_shard_job

BACKENDS = ("process", "ray")
BackendName = Literal["process", "ray"]


@dataclass(frozen=True)
class Execution:
    """How to run shard jobs.

    ``process``: a local pool of ``workers`` processes (default: the number of CPU cores),
    every job with one torch thread; a single job runs in this process, which is faster than
    starting a worker. ``ray``: one Ray task per shard on a local Ray instance (``ray.init()``
    with ``workers`` CPUs) or on the cluster at ``ray_address``.
    """

    backend: BackendName = "process"
    workers: int | None = None
    ray_address: str | None = None

    def __post_init__(self):
        if self.backend not in BACKENDS:
            raise ErasekitError(f"unknown backend '{self.backend}'; use one of {', '.join(BACKENDS)}")
        if self.workers is not None and self.workers < 1:
            raise ErasekitError(f"workers must be at least 1, got {self.workers}")
        if self.ray_address and self.backend != "ray":
            raise ErasekitError("--ray-address needs --backend ray")

    @property
    def worker_count(self) -> int:
        return self.workers or os.cpu_count() or 1


def run_jobs(jobs: Sequence[ShardJob], execution: Execution) -> Iterator[tuple[ShardJob, list[StageResult]]]:
    """Run every job; yields each job with its results as it completes (order not guaranteed)."""
    if not jobs:
        return
    if execution.backend == "ray":
        yield from _run_ray(jobs, execution)
    elif len(jobs) == 1 or execution.worker_count == 1:
        for job in jobs:
            yield job, run_shard_job(job)
    else:
        yield from _run_pool(jobs, execution.worker_count)


def _run_pool(jobs: Sequence[ShardJob], workers: int) -> Iterator[tuple[ShardJob, list[StageResult]]]:
    # fork, as torch's DataLoader workers do: no re-import of the caller's script (spawn would need an
    # `if __name__ == "__main__"` guard), and each job sets one torch thread before any OpenMP work
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=context) as pool:
        futures = {pool.submit(run_shard_job, replace(job, in_worker=True)): job for job in jobs}
        for future in as_completed(futures):
            yield futures[future], future.result()


def _run_ray(jobs: Sequence[ShardJob], execution: Execution) -> Iterator[tuple[ShardJob, list[StageResult]]]:
    ray = require("ray", "--backend ray")
    started_here = not ray.is_initialized()
    if started_here:
        try:
            if execution.ray_address:
                ray.init(address=execution.ray_address, log_to_driver=False)
            else:
                ray.init(num_cpus=execution.worker_count, include_dashboard=False, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = execution.ray_address or "a local Ray instance"
            raise ErasekitError(f"cannot start or reach Ray at {where}: {str(exc).splitlines()[0]}") from None
    try:
        remote = ray.remote(num_cpus=1)(run_shard_job)
        pending = {remote.remote(replace(job, in_worker=True)): job for job in jobs}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                yield pending.pop(ref), ray.get(ref)
    finally:
        if started_here:
            ray.shutdown()
