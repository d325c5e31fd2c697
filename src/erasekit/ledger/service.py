"""Sharded exact unlearning on disk: train a SISA model directory, file and process deletion
requests, repair corrupted checkpoints — all recorded in the ledger.

Processing one batch: take the model's lock, schedule the pending requests, find each affected
shard's earliest affected slice, restart that shard from the last good checkpoint before it
without every example removed so far, write the new checkpoints (content-hashed, atomic), then
commit the new version and mark the requests done in one transaction.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from erasekit.core import progress
from erasekit.core.errors import DataError, LedgerError, ModelError, OutputError, StorageFault
from erasekit.core.io import check_writable_dir, fsync_dir, new_staging, storage_fault
from erasekit.data.dataset import DataSplits
from erasekit.ledger.ledger import (
    DeletionRequest,
    EventRecord,
    Ledger,
    LedgerEvent,
    LedgerStorageFault,
    ModelVersion,
    redact,
    worker_identity,
)
from erasekit.ledger.store import DEFAULT_DB_FILE, CheckpointRef, CorruptCheckpoint, Manifest, ModelDirectory
from erasekit.sisa.backends import Execution, run_jobs
from erasekit.sisa.sharding import (
    Assignment,
    ShardConfig,
    ShardJob,
    SISAEnsemble,
    StageResult,
    load_state,
    slice_data,
)

log = logging.getLogger("erasekit.ledger")

DEFAULT_LEASE_SECONDS = 600.0
DEFAULT_FAULT_RETRIES = 2  # attempts after the first when the disk is full or not writable
DEFAULT_BACKOFF_SECONDS = 5.0  # wait before the first retry; doubles each time


@dataclass(frozen=True)
class DataSource:
    """How to reload the training data: a data spec (paths made absolute), label column, subset size."""

    spec: str
    target: str | None = None
    subset: int | None = None

    def load(self) -> DataSplits:
        from erasekit.data import load_data

        splits = load_data(self.spec, self.target)
        return splits.subsample_train(self.subset) if self.subset is not None else splits

    def label(self) -> str:
        return self.spec if self.subset is None else f"{self.spec} (subset {self.subset})"

    @classmethod
    def absolute(cls, spec: str, target: str | None = None, subset: int | None = None) -> DataSource:
        """The data spec with its path made absolute: later commands may run from another directory."""
        from erasekit.data.sources import CLASSIFICATION_KINDS, DataSpec

        return cls(str(DataSpec.parse(spec, CLASSIFICATION_KINDS).absolute()), target, subset)


@dataclass(frozen=True)
class TrainedSISA:
    """The result of :func:`train_sisa`."""

    directory: Path
    model_id: str
    version: ModelVersion
    seconds: float
    train_accuracy: float
    test_accuracy: float
    db: str  # the ledger URL with its password hidden


@dataclass(frozen=True)
class ProcessOutcome:
    """What one :meth:`ShardedModel.process` call did."""

    versions: tuple[ModelVersion, ...]  # new versions committed, in order
    done_request_ids: tuple[int, ...]
    retrained_shards: int  # shard retrainings over all batches
    skipped_busy: bool  # another worker held the lock and waiting was not asked for
    seconds: float


def _train_accuracy(model: torch.nn.Module, splits: DataSplits) -> tuple[float, float]:
    from erasekit.audit.metrics import accuracy, predict_logits

    return accuracy(*predict_logits(model, splits.train)), accuracy(*predict_logits(model, splits.test))


def _shard_jobs(
    config: ShardConfig,
    assignment: Assignment,
    splits: DataSplits,
    removed_positions: np.ndarray,
    starts: dict[int, tuple[int, dict | None]],
) -> list[ShardJob]:
    x, y = splits.train.x, splits.train.y
    return [
        ShardJob(
            config=config,
            shard=shard,
            num_slices=assignment.num_slices,
            start_slice=start,
            start_state=state,
            slices=slice_data(x, y, assignment, shard, removed_positions),
        )
        for shard, (start, state) in sorted(starts.items())
    ]


def _excluded(assignment: Assignment, shard: int, slice_: int, trained_ids: np.ndarray) -> np.ndarray:
    members = np.flatnonzero((assignment.shard == shard) & (assignment.slice <= slice_))
    return np.setdiff1d(assignment.example_ids[members], trained_ids)


def _store_stages(
    directory: ModelDirectory, assignment: Assignment, shard: int, results: Sequence[StageResult], parent: str | None
) -> list[CheckpointRef]:
    refs = []
    for stage in results:
        ref = directory.write_checkpoint(
            shard,
            stage.slice,
            stage.state,
            parent,
            stage.trained_ids,
            _excluded(assignment, shard, stage.slice, stage.trained_ids),
        )
        refs.append(ref)
        parent = ref.sha256
    return refs


def train_sisa(
    splits: DataSplits,
    source: DataSource,
    config: ShardConfig,
    num_shards: int,
    num_slices: int,
    out: Path,
    db: str | None = None,
    execution: Execution = Execution(),
) -> TrainedSISA:
    """Train S shard models over R slices each into a new model directory ``out`` and register it.

    The directory is built under a temporary name and renamed into place at the end, so a
    failed run leaves nothing behind. ``db`` defaults to ``out/ledger.sqlite``.
    """
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise OutputError(
            f"--out {out} already exists and is not empty; SISA models are never overwritten — pick a new directory"
        )
    check_writable_dir(out)
    assignment = Assignment.create(splits.train_rows, num_shards, num_slices, config.seed)
    if db is not None:
        Ledger.open(db).close()  # fail fast on an unreachable database, before any training
    # named after this process, so a later run removes it if this one is killed
    staging = new_staging(out.parent, out.name, out)
    try:
        directory = ModelDirectory(staging)
        manifest = directory.new_manifest(source.spec, source.target, source.subset, splits.sha256(), config, assignment)
        start = time.perf_counter()
        jobs = _shard_jobs(config, assignment, splits, np.empty(0, dtype=np.int64), {s: (0, None) for s in range(num_shards)})
        checkpoints: list[list[str]] = [[] for _ in range(num_shards)]
        with progress.step(f"train {num_shards} shards", len(jobs)) as advance:
            for job, results in run_jobs(jobs, execution):
                checkpoints[job.shard] = [r.sha256 for r in _store_stages(directory, assignment, job.shard, results, None)]
                advance(1)
        seconds = time.perf_counter() - start
        directory.write_manifest(manifest, assignment)
        url = db or ModelDirectory(out).default_db_url
        staging_url = db or directory.default_db_url
        with Ledger.open(staging_url) as ledger:
            version = ledger.register_model(
                manifest.model_id,
                str(out.resolve()),
                source.label(),
                manifest.data_sha256,
                num_shards,
                num_slices,
                checkpoints,
                seconds,
            )
        fsync_dir(staging)
        if out.exists():
            out.rmdir()
        staging.rename(out)
        fsync_dir(out.parent)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    model = ShardedModel.open(out, db, splits=splits)
    try:
        train_acc, test_acc = _train_accuracy(model.predictor(), splits)
    finally:
        model.close()
    return TrainedSISA(out, manifest.model_id, version, seconds, train_acc, test_acc, redact(url))


class ShardedModel:
    """An opened SISA model directory and its ledger. Open with :meth:`open`; close when done."""

    def __init__(
        self, directory: ModelDirectory, ledger: Ledger, splits: DataSplits | None = None, manifest: Manifest | None = None
    ):
        self.directory = directory
        self.manifest = manifest or directory.manifest()
        self.ledger = ledger
        self.model_id = self.manifest.model_id
        self._assignment: Assignment | None = None
        self._splits = splits
        if splits is not None:
            self._check_data(splits, "the data given")

    @classmethod
    def open(cls, model_dir: Path, db: str | None = None, splits: DataSplits | None = None) -> ShardedModel:
        """Open ``model_dir`` with the ledger at ``db`` (default: the SQLite file inside it)."""
        directory = ModelDirectory(Path(model_dir))
        manifest = directory.manifest()  # a clear error before touching any database
        if db is None and not (directory.root / DEFAULT_DB_FILE).is_file():
            raise LedgerError(
                f"no ledger at {directory.root / DEFAULT_DB_FILE}; if the model was trained with --db URL, pass the same --db"
            )
        ledger = Ledger.open(db or directory.default_db_url, create=False)  # an existing model's ledger exists
        try:
            model = cls(directory, ledger, splits, manifest)
            ledger.model(model.model_id)
        except BaseException:
            ledger.close()
            raise
        return model

    def close(self) -> None:
        self.ledger.close()

    def __enter__(self) -> ShardedModel:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- data -----------------------------------------------------------------------------
    @property
    def source(self) -> DataSource:
        return DataSource(self.manifest.data_spec, self.manifest.data_target, self.manifest.data_subset)

    @property
    def assignment(self) -> Assignment:
        if self._assignment is None:
            self._assignment = self.directory.assignment(self.manifest)
        return self._assignment

    def _check_data(self, splits: DataSplits, what: str) -> None:
        actual = splits.sha256()
        if actual != self.manifest.data_sha256:
            raise DataError(
                f"{what} ({splits.name}, sha256 {actual[:12]}…) is not the data model directory "
                f"{self.directory.root} was trained on ({self.source.label()}, sha256 {self.manifest.data_sha256[:12]}…); "
                "pass the same --data, or train a new model on this data"
            )

    def data(self) -> DataSplits:
        if self._splits is None:
            splits = self.source.load()
            self._check_data(splits, f"the data at {self.source.label()}")
            self._splits = splits
        return self._splits

    # -- asking the ledger ----------------------------------------------------------------
    def add_request(self, example_ids: Sequence[int], reason: str = "") -> DeletionRequest:
        """Record a deletion request; every id must be a training example of this model."""
        self.assignment.positions_of(example_ids)
        return self.ledger.add_request(self.model_id, example_ids, reason)

    def add_requests(self, batch: Sequence[tuple[Sequence[int], str]]) -> list[DeletionRequest]:
        """Record many requests at once (one transaction); every id must be a training example of this model."""
        for example_ids, _ in batch:
            self.assignment.positions_of(example_ids)
        return self.ledger.add_requests(self.model_id, batch)

    def requests(self, status: str | None = None) -> list[DeletionRequest]:
        return self.ledger.requests(self.model_id, status)

    def history(self) -> list[ModelVersion]:
        return self.ledger.versions(self.model_id)

    def current_version(self) -> ModelVersion:
        return self.ledger.version(self.model_id)

    def versions_containing(self, example_id: int) -> list[int]:
        self.assignment.positions_of([example_id])
        return self.ledger.versions_containing(self.model_id, example_id)

    def events(self, kind: str | None = None) -> list[LedgerEvent]:
        return self.ledger.events(self.model_id, kind)

    # -- the predictor --------------------------------------------------------------------
    def _refs(self, version: ModelVersion) -> list[list[CheckpointRef]]:
        return [[CheckpointRef(s, r, sha) for r, sha in enumerate(row)] for s, row in enumerate(version.checkpoints)]

    def predictor(self, version: int | None = None) -> SISAEnsemble:
        """The aggregated classifier of ``version`` (default: current), every checkpoint hash-checked."""
        chosen = self.ledger.version(self.model_id, version)
        members, active = [], []
        for shard, refs in enumerate(self._refs(chosen)):
            try:
                state, metadata = self.directory.read_checkpoint(refs[-1])
            except CorruptCheckpoint as exc:
                raise ModelError(
                    f"{exc}; run `erasekit sisa repair --model-dir {self.directory.root}` to rebuild shard {shard}"
                ) from None
            model = load_state(self.manifest.config.initial_model(shard), state)
            model.eval()
            members.append(model)
            active.append(int(metadata.get("num_trained", "1")) > 0)
        return SISAEnsemble(members, self.manifest.config.aggregation, active)

    def checkpoint_metadata(self, version: int | None = None) -> list[dict[str, str]]:
        """The final checkpoint's metadata per shard (what it was trained without)."""
        chosen = self.ledger.version(self.model_id, version)
        return [self.directory.read_checkpoint(refs[-1])[1] for refs in self._refs(chosen)]

    def verify(self, version: int | None = None) -> list[CheckpointRef]:
        """Checkpoints of ``version`` whose file is missing or fails its hash check."""
        chosen = self.ledger.version(self.model_id, version)
        return [ref for refs in self._refs(chosen) for ref in refs if not self.directory.verify(ref)]

    # -- processing -----------------------------------------------------------------------
    def process(
        self,
        execution: Execution = Execution(),
        limit: int | None = None,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        wait_seconds: float = 0.0,
        repair_only: bool = False,
        fault_retries: int = DEFAULT_FAULT_RETRIES,
        backoff_seconds: float = DEFAULT_BACKOFF_SECONDS,
    ) -> ProcessOutcome:
        """Process pending requests in batches of at most ``limit`` until none are left.

        If another worker holds the lock, wait up to ``wait_seconds`` for it (0: return at once).
        ``repair_only`` rebuilds corrupted shards without taking any request.

        A fault of the environment (disk full, read-only or unpermitted storage) never fails a
        request: the batch goes back to pending, and the attempt is repeated up to
        ``fault_retries`` times after ``backoff_seconds``, doubling each time. If the fault
        persists, :class:`~erasekit.core.errors.StorageFault` says what happened; the requests
        stay pending and the next ``process`` resumes them. Any other unexpected error (a bug)
        marks the batch failed (``requests retry`` puts it back).
        """
        if fault_retries < 0 or not backoff_seconds >= 0:
            raise LedgerError(f"fault_retries and backoff_seconds must be ≥ 0, got {fault_retries} and {backoff_seconds}")
        worker = worker_identity()
        start = time.perf_counter()
        versions: list[ModelVersion] = []
        done: list[int] = []
        retrained = 0
        faults = 0
        counts = self.ledger.count_requests(self.model_id)
        if repair_only or counts.get("received") or counts.get("scheduled"):
            self.data()  # a missing or changed data file is the caller's error: fail before scheduling anything
        deadline = time.monotonic() + wait_seconds
        while True:
            holder = self.ledger.acquire(self.model_id, worker, lease_seconds)
            if holder is not None:
                if time.monotonic() >= deadline:
                    return ProcessOutcome(
                        tuple(versions), tuple(done), retrained, not versions and not done, time.perf_counter() - start
                    )
                time.sleep(0.2)
                continue
            batch: list[DeletionRequest] = []
            fault: StorageFault | None = None
            try:
                batch = [] if repair_only else self.ledger.claim(self.model_id, worker, limit)
                if not batch and not repair_only:
                    break
                version, shards = self._update(worker, batch, execution, lease_seconds)
            except Exception as exc:
                fault = storage_fault(exc)
                if fault is None:
                    # a bug fails the batch; a lost lock (LedgerError) leaves it to the next worker
                    if batch and not isinstance(exc, LedgerError):
                        self.ledger.fail(self.model_id, worker, [r.id for r in batch], f"{type(exc).__name__}: {exc}")
                    raise
                self._leave_pending(worker, batch, fault)
            finally:
                self._release(worker)
            if fault is not None:
                faults += 1
                pending = self._pending_text()
                if faults > fault_retries:
                    raise StorageFault(
                        f"{fault} ({faults} attempt(s)); {pending} — run `erasekit requests process` again once it is "
                        "fixed: nothing was marked failed",
                        fault.errno,
                    ) from None
                delay = backoff_seconds * 2 ** (faults - 1)
                log.warning("%s; %s, retrying in %.0f s (%d of %d)", fault, pending, delay, faults, fault_retries)
                time.sleep(delay)
                continue
            faults = 0
            done.extend(r.id for r in batch)
            retrained += shards
            if version is not None:
                versions.append(version)
            if repair_only:
                break
        return ProcessOutcome(tuple(versions), tuple(done), retrained, False, time.perf_counter() - start)

    def _pending_text(self) -> str:
        """ "N request(s) pending", or a note that the ledger could not be read either."""
        try:
            counts = self.ledger.count_requests(self.model_id)
        except LedgerError:
            return "the pending requests are untouched"
        return f"{counts.get('received', 0) + counts.get('scheduled', 0)} request(s) pending"

    def _leave_pending(self, worker: str, batch: list[DeletionRequest], fault: StorageFault) -> None:
        """Put the batch back to received; if the ledger itself cannot be written, the batch stays
        scheduled by this (soon dead) worker, which :meth:`Ledger.claim` also treats as pending."""
        if not batch:
            return
        with contextlib.suppress(LedgerError):
            self.ledger.unschedule(self.model_id, worker, [r.id for r in batch], f"left pending after a storage fault: {fault}")

    def _release(self, worker: str) -> None:
        with contextlib.suppress(LedgerStorageFault):  # the lease runs out by itself; the caller reports the fault
            self.ledger.release(self.model_id, worker)

    def repair(self, execution: Execution = Execution()) -> ModelVersion | None:
        """Rebuild every shard with a corrupted or missing checkpoint; returns the new version, if any."""
        outcome = self.process(execution, repair_only=True, wait_seconds=60.0)
        return outcome.versions[-1] if outcome.versions else None

    def _update(
        self, worker: str, batch: list[DeletionRequest], execution: Execution, lease_seconds: float
    ) -> tuple[ModelVersion | None, int]:
        started = time.perf_counter()
        assignment = self.assignment
        current = self.current_version()
        already = self.ledger.deleted_ids(self.model_id)
        new: dict[int, int] = {}  # example id → the first request asking for it
        for request in batch:
            for example_id in request.example_ids:
                if example_id not in already and example_id not in new:
                    new[example_id] = request.id
        events: list[EventRecord] = []
        earliest: dict[int, int] = {}
        touching: dict[int, set[int]] = {}  # shard → requests whose new deletions fall in it
        removed_here: dict[int, int] = {}  # shard → how many examples it newly loses
        if new:
            positions = assignment.positions_of(list(new))
            for example_id, p in zip(new, positions):
                shard, slice_ = int(assignment.shard[p]), int(assignment.slice[p])
                earliest[shard] = min(earliest.get(shard, slice_), slice_)
                touching.setdefault(shard, set()).add(new[example_id])
                removed_here[shard] = removed_here.get(shard, 0) + 1
        refs = self._refs(current)
        for ref in (ref for row in refs for ref in row if not self.directory.verify(ref)):
            message = (
                f"checkpoint shard {ref.shard} slice {ref.slice} ({ref.relative_path()}) is missing or corrupted; "
                "rebuilding the shard from the last good checkpoint before it"
            )
            log.warning(message)
            events.append(EventRecord("warning", "corruption", message, shard=ref.shard))
            earliest[ref.shard] = min(earliest.get(ref.shard, ref.slice), ref.slice)
        if not earliest:
            if batch:  # every example was already removed: done, no retraining
                self.ledger.complete(
                    self.model_id,
                    worker,
                    [r.id for r in batch],
                    current.version,
                    [
                        EventRecord(
                            "info",
                            "noop",
                            "every example in these requests was already removed; no retraining",
                            request_ids=tuple(r.id for r in batch),
                        )
                    ],
                )
            return None, 0
        starts: dict[int, tuple[int, dict | None]] = {}
        for shard, first in earliest.items():
            starts[shard] = (0, None)
            for r in range(first - 1, -1, -1):  # the last good checkpoint before the first affected slice
                try:
                    state, _ = self.directory.read_checkpoint(refs[shard][r])
                except CorruptCheckpoint:
                    continue
                starts[shard] = (r + 1, state)
                break
        splits = self.data()
        removed_positions = assignment.positions_of(sorted(set(already) | set(new)))
        jobs = _shard_jobs(self.manifest.config, assignment, splits, removed_positions, starts)
        checkpoints = [list(row) for row in current.checkpoints]
        with progress.step(f"retrain {len(jobs)} shard(s)", len(jobs)) as advance:
            for job, results in run_jobs(jobs, execution):
                parent = checkpoints[job.shard][job.start_slice - 1] if job.start_slice else None
                stored = _store_stages(self.directory, assignment, job.shard, results, parent)
                for ref in stored:
                    checkpoints[job.shard][ref.slice] = ref.sha256
                events.append(
                    EventRecord(
                        "info",
                        "retrain",
                        f"shard {job.shard} retrained from slice {job.start_slice} without "
                        f"{removed_here.get(job.shard, 0)} newly removed example(s)",
                        shard=job.shard,
                        request_ids=tuple(sorted(touching.get(job.shard, ()))),
                    )
                )
                self.ledger.renew(self.model_id, worker, lease_seconds)
                advance(1)
        version = self.ledger.commit_version(
            self.model_id,
            worker,
            current.version,
            "deletion" if new else "repair",
            checkpoints,
            new,
            sorted(starts),
            [r.id for r in batch],
            events,
            time.perf_counter() - started,
        )
        return version, len(jobs)
