"""The deletion-request ledger and sharded model directories, on SQLite and PostgreSQL.

Reliability: SIGKILL during processing, idempotency, two concurrent workers, corrupted
checkpoints. Every "the example is gone" check is paired with the same check passing on the
example before deletion. PostgreSQL runs against $ERASEKIT_TEST_POSTGRES_URL or a private server
that the test session starts from the installed binaries; where neither exists those tests are
skipped with that reason.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from erasekit.cli import main
from erasekit.core.errors import DataError, ForgetSetError, LedgerError, ModelError, OutputError
from erasekit.data import load_digits
from erasekit.ledger import DataSource, Execution, Ledger, ShardConfig, ShardedModel, train_sisa
from erasekit.ledger.ledger import worker_identity
from erasekit.ledger.service import _shard_jobs
from erasekit.ledger.store import ASSIGNMENT
from erasekit.models import ModelSpec
from erasekit.sisa.sharding import run_shard_job
from erasekit.training import Recipe

RECIPE = Recipe(epochs=4, batch_size=64, lr=0.05)
INLINE = Execution(workers=1)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request):
    """None = the default SQLite file inside the model directory; else a PostgreSQL URL (a private
    server the test session starts, or $ERASEKIT_TEST_POSTGRES_URL; see conftest.postgres_url)."""
    if request.param == "sqlite":
        return None
    return request.getfixturevalue("postgres_url")


def _train(directory: Path, db: str | None, shards: int = 4, slices: int = 2, digits=None):
    splits = digits or load_digits()
    config = ShardConfig(spec=ModelSpec("mlp", splits.input_shape, splits.num_classes), recipe=RECIPE, seed=0)
    return train_sisa(splits, DataSource.absolute("digits"), config, shards, slices, directory, db, INLINE)


@pytest.fixture
def sisa_dir(tmp_path, db_url, digits):
    _train(tmp_path / "model", db_url, digits=digits)
    return tmp_path / "model"


def _open(directory, db_url, digits=None) -> ShardedModel:
    return ShardedModel.open(directory, db_url, splits=digits)


def _expected_states(model: ShardedModel, removed_ids):
    """Every shard trained from scratch without ``removed_ids`` (the exact reference)."""
    assignment = model.assignment
    removed = assignment.positions_of(sorted(removed_ids)) if removed_ids else np.empty(0, dtype=np.int64)
    jobs = _shard_jobs(
        model.manifest.config, assignment, model.data(), removed, {s: (0, None) for s in range(assignment.num_shards)}
    )
    return {job.shard: run_shard_job(job) for job in jobs}


def _assert_current_model_excludes(model: ShardedModel, deleted: set[int]) -> None:
    """Per the assignment, each shard's final checkpoint records every deleted example of that shard as excluded."""
    assignment = model.assignment
    metadata = model.checkpoint_metadata()
    for shard, meta in enumerate(metadata):
        in_shard = {int(e) for e in deleted if assignment.shard[assignment.positions_of([e])[0]] == shard}
        assert in_shard <= set(json.loads(meta["excluded_ids"])), f"shard {shard} still holds {in_shard}"
    assert model.verify() == []


# -- train, add, process, ask -------------------------------------------------------------
def test_train_registers_version_one_and_a_usable_classifier(sisa_dir, db_url, digits):
    with _open(sisa_dir, db_url) as model:
        history = model.history()
        assert [v.version for v in history] == [1] and history[0].kind == "train"
        assert len(history[0].checkpoints) == 4 and all(len(row) == 2 for row in history[0].checkpoints)
        predictor = model.predictor()
        accuracy = (predictor.predict(digits.test.x) == digits.test.y.numpy()).mean()
        assert accuracy > 0.6  # chance is 0.1
        for refs in model._refs(history[0]):
            for ref in refs:
                assert (sisa_dir / ref.relative_path()).is_file()
    assert (sisa_dir / "sisa.json").is_file() and (sisa_dir / ASSIGNMENT).is_file()
    assert not list(sisa_dir.parent.glob(".model.*"))  # the staging directory was renamed away


def test_process_removes_exactly_and_records_the_version(sisa_dir, db_url, digits):
    with _open(sisa_dir, db_url, digits) as model:
        victims = [int(i) for i in model.assignment.example_ids[[3, 200]]]
        assert model.versions_containing(victims[0]) == [1]  # positive control: version 1 holds it
        request = model.add_request(victims, reason="GDPR art. 17")
        assert request.status == "received" and request.done_at is None
        outcome = model.process(INLINE)
        assert outcome.done_request_ids == (request.id,)
        done = model.requests()[0]
        assert done.status == "done" and done.model_version == 2 and done.done_at >= done.received_at
        assert model.current_version().removed_example_ids == tuple(sorted(victims))
        assert model.versions_containing(victims[0]) == [1]
        assert model.versions_containing(int(model.assignment.example_ids[5])) == [1, 2]
        _assert_current_model_excludes(model, set(victims))
        # exact: the affected shards equal training them from scratch without the victims
        expected = _expected_states(model, victims)
        current = model.current_version()
        for shard in current.retrained_shards:
            state, _ = model.directory.read_checkpoint(model._refs(current)[shard][-1])
            assert all(np.array_equal(state[k], expected[shard][-1].state[k]) for k in state)
        untouched = set(range(4)) - set(current.retrained_shards)
        assert untouched and all(current.checkpoints[s] == model.history()[0].checkpoints[s] for s in untouched)


def test_requests_touching_the_same_shard_are_batched_into_one_retraining(sisa_dir, db_url, digits):
    with _open(sisa_dir, db_url, digits) as model:
        a = model.assignment
        same_shard = [int(a.example_ids[p]) for p in np.flatnonzero(a.shard == 2)[:3]]
        for example_id in same_shard:
            model.add_request([example_id])
        outcome = model.process(INLINE)
        assert len(outcome.versions) == 1 and outcome.retrained_shards == 1
        retrains = model.events("retrain")
        assert len(retrains) == 1 and retrains[0].shard == 2 and len(retrains[0].request_ids) == 3


def test_processing_again_is_a_no_op_and_already_deleted_examples_need_no_retraining(sisa_dir, db_url, digits):
    with _open(sisa_dir, db_url, digits) as model:
        victim = int(model.assignment.example_ids[10])
        model.add_request([victim])
        model.process(INLINE)
        versions, events = len(model.history()), len(model.events())
        again = model.process(INLINE)  # nothing pending: nothing happens
        assert again.done_request_ids == () and len(model.history()) == versions and len(model.events()) == events
        repeat = model.add_request([victim], reason="asked twice")
        outcome = model.process(INLINE)
        assert outcome.done_request_ids == (repeat.id,) and outcome.retrained_shards == 0 and outcome.versions == ()
        final = model.ledger.request(repeat.id)
        assert final.status == "done" and final.model_version == 2  # recorded against the version that removed it
        assert len(model.history()) == versions and len(model.events("retrain")) == 1


def test_corrupted_checkpoint_is_detected_and_rebuilt_from_the_previous_good_one(sisa_dir, db_url, digits, caplog):
    with _open(sisa_dir, db_url, digits) as model:
        current = model.current_version()
        assert model.verify() == []  # positive control: all clean before the flip
        ref = model._refs(current)[1][1]
        path = sisa_dir / ref.relative_path()
        payload = bytearray(path.read_bytes())
        payload[len(payload) // 2] ^= 0x01
        path.write_bytes(bytes(payload))
        assert model.verify() == [ref]
        with pytest.raises(ModelError, match="sisa repair"):
            model.predictor()  # never loaded silently
        with caplog.at_level("WARNING", logger="erasekit.ledger"):
            repaired = model.repair(INLINE)
        assert repaired is not None and repaired.kind == "repair" and repaired.retrained_shards == (1,)
        assert any("corrupted" in r.message for r in caplog.records)
        warnings = model.events("corruption")
        assert len(warnings) == 1 and warnings[0].level == "warning" and warnings[0].shard == 1
        # rebuilt from slice 0's checkpoint with the same data: the very same bytes as before
        assert model.current_version().checkpoints[1] == current.checkpoints[1]
        assert model.verify() == [] and model.predictor() is not None


def test_corrupted_first_slice_is_rebuilt_from_scratch(sisa_dir, db_url, digits):
    with _open(sisa_dir, db_url, digits) as model:
        current = model.current_version()
        for r in (0, 1):
            (sisa_dir / model._refs(current)[0][r].relative_path()).write_bytes(b"half-written")
        model.add_request([int(model.assignment.example_ids[np.flatnonzero(model.assignment.shard == 0)[0]])])
        model.process(INLINE)  # processing repairs what it finds as well
        assert model.verify() == []
        assert model.events("corruption") and model.current_version().kind == "deletion"


def test_a_bug_marks_the_batch_failed_and_retry_requeues_it(sisa_dir, db_url, digits, monkeypatch, capsys):
    import erasekit.ledger.service as service

    with _open(sisa_dir, db_url, digits) as model:
        request = model.add_request([int(model.assignment.example_ids[0])])

        def broken(jobs, execution):
            raise RuntimeError("a bug in the training step")
            yield  # pragma: no cover

        monkeypatch.setattr(service, "run_jobs", broken)
        with pytest.raises(RuntimeError):
            model.process(INLINE)
        failed = model.ledger.request(request.id)
        assert failed.status == "failed" and "RuntimeError: a bug" in failed.error
        assert len(model.history()) == 1 and model.events("failure")
        monkeypatch.undo()
    db = ["--db", db_url] if db_url else []
    assert main(["requests", "retry", "--model-dir", str(sisa_dir), "--id", str(request.id), *db]) == 0
    with _open(sisa_dir, db_url, digits) as model:
        assert model.ledger.request(request.id).status == "received"
        model.process(INLINE)
        assert model.ledger.request(request.id).status == "done"
    assert main(["requests", "retry", "--model-dir", str(sisa_dir), "--id", str(request.id), *db]) == 2
    assert "only failed requests" in capsys.readouterr().err


def _failing_writes(monkeypatch, failures: int | None):
    """Checkpoint writes fail with ENOSPC ``failures`` times (None: always); returns the call counter."""
    import errno

    from erasekit.ledger.store import ModelDirectory

    real = ModelDirectory.write_checkpoint
    calls = {"n": 0}

    def write(self, *args, **kwargs):
        calls["n"] += 1
        if failures is None or calls["n"] <= failures:
            raise OSError(errno.ENOSPC, "No space left on device", str(self.root))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(ModelDirectory, "write_checkpoint", write)
    return calls


def test_a_storage_fault_is_retried_and_never_fails_a_request(sisa_dir, db_url, digits, monkeypatch):
    from erasekit.core.errors import StorageFault

    with _open(sisa_dir, db_url, digits) as model:
        ids = [int(i) for i in model.assignment.example_ids]
        first = model.add_request([ids[0]])
        _failing_writes(monkeypatch, failures=2)
        outcome = model.process(INLINE, fault_retries=2, backoff_seconds=0)
        assert outcome.done_request_ids == (first.id,) and model.ledger.request(first.id).status == "done"
        assert len(model.events("fault")) == 2 and not model.events("failure")

        # a fault that outlasts the retries: one clear error, the request still pending, nothing failed
        second = model.add_request([ids[1]])
        _failing_writes(monkeypatch, failures=None)
        with pytest.raises(StorageFault, match=r"No space left on device.*\(2 attempt\(s\)\); 1 request\(s\) pending"):
            model.process(INLINE, fault_retries=1, backoff_seconds=0)
        assert model.ledger.request(second.id).status == "received" and not model.events("failure")
        assert model.current_version().version == 2
        monkeypatch.undo()
        assert model.process(INLINE).done_request_ids == (second.id,)  # resumes once the fault is gone
        _assert_current_model_excludes(model, {ids[0], ids[1]})


def test_a_second_worker_cannot_schedule_or_commit_while_the_first_holds_the_lock(sisa_dir, db_url):
    with _open(sisa_dir, db_url) as model:
        model.add_request([int(model.assignment.example_ids[0])])
        first, second = worker_identity(), worker_identity()
        ledger = model.ledger
        assert ledger.acquire(model.model_id, first, 60) is None
        assert ledger.acquire(model.model_id, second, 60) == first
        with pytest.raises(LedgerError, match="does not hold the lock"):
            ledger.claim(model.model_id, second)
        assert len(ledger.claim(model.model_id, first)) == 1
        with pytest.raises(LedgerError, match="does not hold the lock"):
            ledger.commit_version(model.model_id, second, 1, "deletion", [], {}, [], [], [], 0.0)
        with pytest.raises(LedgerError, match="moved to version"):
            ledger.commit_version(model.model_id, first, 0, "deletion", [], {}, [], [], [], 0.0)
        assert model.process(INLINE).skipped_busy  # a real worker backs off too
        ledger.release(model.model_id, first)
        assert ledger.acquire(model.model_id, second, 60) is None


def test_the_lock_of_a_dead_worker_is_taken_over(sisa_dir, db_url):
    with _open(sisa_dir, db_url) as model:
        dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
        holder = f"{worker_identity().split(':')[0]}:{dead.stdout.strip()}:deadbeef"
        assert model.ledger.acquire(model.model_id, holder, 600) is None
        me = worker_identity()
        assert model.ledger.acquire(model.model_id, me, 600) is None
        assert model.events("lock")[0].level == "warning"


WORKER = """
import sys
from erasekit.cli import main
print("ready", flush=True)
sys.exit(main(sys.argv[1:]))
"""


def _worker(directory: Path, db: str | None, *extra: str) -> subprocess.Popen:
    args = ["requests", "process", "--model-dir", str(directory), "--workers", "1", *extra]
    if db:
        args += ["--db", db]
    env = {**os.environ, "ERASEKIT_PROGRESS": "0"}
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )


def _wait_ready(proc: subprocess.Popen) -> None:
    line = proc.stdout.readline()
    assert line.strip() == "ready", proc.stderr.read()


def _process_in_child(directory: str, db: str | None, limit: int) -> None:
    import torch

    from erasekit.core import progress

    torch.set_num_threads(1)  # a forked child must not enter the OpenMP pool its parent already started
    progress.set_enabled(False)
    with ShardedModel.open(Path(directory), db) as model:
        model.process(INLINE, limit=limit)
    os._exit(0)


def _ledger_url(directory: Path, db_url: str | None) -> str:
    return db_url or f"sqlite:///{directory / 'ledger.sqlite'}"


def _scheduled_by(ledger: Ledger, pid: int) -> int:
    """How many requests the worker process ``pid`` has scheduled and not yet committed."""
    from sqlalchemy import func, select

    from erasekit.ledger.db import RequestRow

    with ledger.engine.connect() as connection:
        query = select(func.count()).where(RequestRow.status == "scheduled", RequestRow.worker.like(f"%:{pid}:%"))
        return int(connection.execute(query).scalar_one())


@pytest.mark.slow
def test_sigkill_mid_batch_loses_nothing_and_applies_nothing_twice(sisa_dir, db_url, digits):
    """50 requests. A worker (forked, so it starts at once) is SIGKILLed again and again, each time
    only after it has scheduled a batch — so the kill lands while it retrains, writes checkpoints
    or commits — and a new worker takes over. Counted: kills that left a batch scheduled and
    uncommitted (mid-batch); at least ten must land there, or the test did not test crashes."""
    import multiprocessing

    rng = random.Random(0)
    with _open(sisa_dir, db_url, digits) as model:
        ids = [int(i) for i in model.assignment.example_ids]
        asked = []
        for _ in range(50):
            chosen = rng.sample(ids[:400], rng.randint(1, 3))  # a small pool: some repeats across requests
            asked.append(set(chosen))
            model.add_request(chosen)
        model_id = model.model_id
    context = multiprocessing.get_context("fork")
    mid_batch = 0
    with Ledger.open(_ledger_url(sisa_dir, db_url), create=False) as watcher:
        for _attempt in range(200):
            child = context.Process(target=_process_in_child, args=(str(sisa_dir), db_url, 3))
            child.start()
            if mid_batch >= 12 or not watcher.count_requests(model_id).get("received", 0) + watcher.count_requests(model_id).get(
                "scheduled", 0
            ):
                child.join(timeout=300)  # enough crashes: let this worker finish the queue
                assert child.exitcode == 0
                break
            while child.is_alive() and not _scheduled_by(watcher, child.pid):
                child.join(timeout=0.002)  # wait until this worker holds a batch
            if not child.is_alive():
                continue  # it finished a last small batch between two polls
            child.join(timeout=rng.uniform(0.0, 0.05))
            if child.is_alive():
                os.kill(child.pid, signal.SIGKILL)
                child.join()
                mid_batch += _scheduled_by(watcher, child.pid) > 0
        else:
            pytest.fail("the queue never emptied")
    assert mid_batch >= 10, f"only {mid_batch} kills landed mid-batch; the test did not exercise crashes"
    with _open(sisa_dir, db_url, digits) as model:
        requests_done = model.requests()
        assert len(requests_done) == 50 and all(r.status == "done" and r.model_version for r in requests_done)
        deleted = model.ledger.deleted_ids(model.model_id)
        assert set(deleted) == set().union(*asked)
        removed_lists = [e for v in model.history() for e in v.removed_example_ids]
        assert len(removed_lists) == len(set(removed_lists))  # no example removed by two versions
        versions = model.history()
        assert [v.parent_version for v in versions[1:]] == [v.version for v in versions[:-1]]
        _assert_current_model_excludes(model, set(deleted))
        expected = _expected_states(model, set(deleted))
        current = model.current_version()
        for shard, refs in enumerate(model._refs(current)):
            state, _ = model.directory.read_checkpoint(refs[-1])
            assert all(np.array_equal(state[k], expected[shard][-1].state[k]) for k in state), f"shard {shard}"


def test_when_a_lease_runs_out_mid_batch_exactly_one_commit_wins(sisa_dir, db_url, digits):
    """Worker A schedules a batch and stalls past its lease; worker B takes the lock over, schedules
    the same requests and commits. A's late commit is refused, so the deletion is applied once."""
    import time

    with _open(sisa_dir, db_url, digits) as model:
        example = int(model.assignment.example_ids[0])
        request = model.add_request([example])
        ledger, model_id = model.ledger, model.model_id
        a, b = worker_identity(), worker_identity()
        assert ledger.acquire(model_id, a, 0.3) is None
        assert [r.id for r in ledger.claim(model_id, a)] == [request.id]
        assert ledger.acquire(model_id, b, 60) == a  # positive control: while A's lease runs, B waits
        time.sleep(0.4)
        assert ledger.acquire(model_id, b, 60) is None  # the lease ran out: B takes over
        assert [r.id for r in ledger.claim(model_id, b)] == [request.id]
        current = model.current_version()
        commits = []
        for worker in (b, a):
            try:
                ledger.commit_version(
                    model_id,
                    worker,
                    current.version,
                    "deletion",
                    current.checkpoints,
                    {example: request.id},
                    [],
                    [request.id],
                    [],
                    0.0,
                )
                commits.append(worker)
            except LedgerError as exc:
                assert "does not hold the lock" in str(exc)
        assert commits == [b]
        with pytest.raises(LedgerError, match="lost the lock"):
            ledger.renew(model_id, a, 60)  # A learns it lost the lock at its next renewal
        assert ledger.deleted_ids(model_id) == {example: 2}
        assert ledger.request(request.id).status == "done" and len(model.history()) == 2


def _race_in_child(directory: str, db: str | None, lease_seconds: float) -> None:
    import time

    import torch

    import erasekit.ledger.service as service
    from erasekit.core import progress

    torch.set_num_threads(1)
    progress.set_enabled(False)
    real = service.run_jobs

    def slow_jobs(jobs, execution):  # every shard takes ≥ 0.1 s, ten leases: the other worker's 0.2 s poll lands mid-batch
        for item in real(jobs, execution):
            time.sleep(0.1)
            yield item

    service.run_jobs = slow_jobs
    try:
        with ShardedModel.open(Path(directory), db) as model:
            model.process(INLINE, limit=2, lease_seconds=lease_seconds, wait_seconds=60)
    except LedgerError as exc:
        os._exit(3 if "lost the lock" in str(exc) or "does not hold the lock" in str(exc) else 4)
    os._exit(0)


@pytest.mark.slow
def test_two_workers_with_a_short_lease_race_and_nothing_is_applied_twice(sisa_dir, db_url, digits):
    """Two workers on one queue with a 10 ms lease, far shorter than retraining a shard: each takes
    the lock over from the other mid-batch. A worker whose lease was taken stops at its next
    renewal or commit (exit 3 here). At least one such race must happen (else the test tested
    nothing); afterwards every request is done once, every example is removed by exactly one
    version, and the version chain has no fork."""
    import multiprocessing

    with _open(sisa_dir, db_url) as model:
        ids = [int(i) for i in model.assignment.example_ids]
        for k in range(12):
            model.add_request([ids[7 * k], ids[7 * k + 3]])
    context = multiprocessing.get_context("fork")
    children = [context.Process(target=_race_in_child, args=(str(sisa_dir), db_url, 0.01)) for _ in range(2)]
    for child in children:
        child.start()
    for child in children:
        child.join(timeout=300)
    codes = sorted(child.exitcode for child in children)
    assert set(codes) <= {0, 3}, codes
    assert 3 in codes, "no worker lost its lock mid-batch: the race did not happen"
    with _open(sisa_dir, db_url, digits) as model:
        model.process(INLINE)  # whatever a stopped worker left pending
        assert all(r.status == "done" for r in model.requests())
        versions = model.history()
        assert [v.parent_version for v in versions[1:]] == [v.version for v in versions[:-1]]
        removed = [e for v in versions for e in v.removed_example_ids]
        assert len(removed) == len(set(removed)) == 24
        _assert_current_model_excludes(model, set(removed))


# -- schema and migrations ----------------------------------------------------------------
def test_migrations_build_exactly_the_declared_schema(tmp_path):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from erasekit.ledger.db import Base
    from erasekit.ledger.ledger import schema_revision

    url = f"sqlite:///{tmp_path / 'fresh.sqlite'}"
    with Ledger.open(url) as ledger:
        assert schema_revision(ledger.engine) == Ledger.HEAD
        with ledger.engine.connect() as connection:
            context = MigrationContext.configure(
                connection,
                opts={
                    "compare_type": True,
                    "include_name": lambda name, kind, _parent: name != "erasekit_alembic_version",
                },
            )
            assert compare_metadata(context, Base.metadata) == []


def test_migrations_downgrade_and_upgrade(tmp_path):
    import sqlalchemy as sa
    from alembic import command
    from alembic.config import Config

    from erasekit.ledger.ledger import MIGRATIONS

    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    with Ledger.open(url) as ledger:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with ledger.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "base")
        assert "erasekit_requests" not in sa.inspect(ledger.engine).get_table_names()
    with Ledger.open(url) as ledger:  # opening upgrades again
        assert "erasekit_requests" in sa.inspect(ledger.engine).get_table_names()


# -- the CLI ------------------------------------------------------------------------------
def _cli(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_end_to_end_with_json(tmp_path, capsys, db_url):
    directory = tmp_path / "m"
    db = ["--db", db_url] if db_url else []
    code, out, err = _cli(
        capsys,
        "sisa",
        "train",
        "--data",
        "digits",
        "--shards",
        "3",
        "--slices",
        "2",
        "--epochs",
        "2",
        "--workers",
        "1",
        "--out",
        directory,
        *db,
        "--json",
    )
    assert code == 0, err
    trained = json.loads(out)
    assert trained["version"] == 1 and 0 < trained["test_accuracy"] <= 1
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("0, 1  # two rows\n")
    code, out, _ = _cli(
        capsys, "requests", "add", "--model-dir", directory, "--ids", ids_file, "--reason", "erasure", *db, "--json"
    )
    first = json.loads(out)
    assert first["example_ids"] == [0, 1] and first["reason"] == "erasure"
    assert _cli(capsys, "requests", "add", "--model-dir", directory, "--id", "2", *db)[0] == 0  # the human-readable form
    code, out, _ = _cli(capsys, "requests", "list", "--model-dir", directory, "--status", "received", *db, "--json")
    pending = json.loads(out)
    assert len(pending) == 2 and pending[0]["id"] == first["id"] and pending[0]["status"] == "received"
    assert pending[0]["pending_seconds"] >= 0 and pending[0]["done_at"] is None
    assert _cli(capsys, "requests", "process", "--model-dir", directory, "--workers", "1", *db)[0] == 0
    code, out, _ = _cli(capsys, "requests", "list", "--model-dir", directory, *db, "--json")
    listed = json.loads(out)
    for row in listed:
        assert {"id", "example_ids", "status", "received_at", "done_at", "model_version"} <= set(row)
        assert row["status"] == "done" and row["model_version"] == 2 and row["done_at"]
    code, out, _ = _cli(capsys, "models", "history", "--model-dir", directory, *db, "--json")
    history = json.loads(out)
    assert [v["version"] for v in history] == [1, 2] and history[1]["removed_example_ids"] == [0, 1, 2]
    assert all({"version", "created_at", "removed_example_ids"} <= set(v) for v in history)
    code, out, _ = _cli(capsys, "models", "history", "--model-dir", directory, "--contains", "1", *db, "--json")
    assert [v["version"] for v in json.loads(out)] == [1]
    code, out, _ = _cli(capsys, "sisa", "status", "--model-dir", directory, *db, "--json")
    assert json.loads(out)["current_version"] == 2 and json.loads(out)["corrupted_checkpoints"] == []
    assert _cli(capsys, "requests", "list", "--model-dir", directory, *db)[0] == 0
    assert _cli(capsys, "models", "history", "--model-dir", directory, *db)[0] == 0


@pytest.mark.slow
def test_process_pool_and_ray_backends_give_the_same_checkpoints(tmp_path, digits):
    pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'erasekit[ray]'")
    results = {}
    for name, execution in (("inline", INLINE), ("pool", Execution(workers=2)), ("ray", Execution("ray", workers=2))):
        _train(tmp_path / name, None, digits=digits)
        with _open(tmp_path / name, None, digits) as model:
            a = model.assignment
            for shard in range(3):  # deletions in three shards: three parallel retrainings
                model.add_request([int(a.example_ids[np.flatnonzero(a.shard == shard)[0]])])
            outcome = model.process(execution)
            assert outcome.retrained_shards == 3
            results[name] = model.current_version().checkpoints
    assert results["inline"] == results["pool"] == results["ray"]


# -- bad input: one line, exit 2, nothing written -----------------------------------------
@pytest.fixture
def local_dir(tmp_path, digits):
    """A model with the default ledger (SQLite inside the directory)."""
    _train(tmp_path / "model", None, digits=digits)
    return tmp_path / "model"


def _fails(capsys, *args) -> str:
    code, out, err = _cli(capsys, *args)
    assert code == 2 and "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    return lines[0]


def test_bad_ids_not_in_the_training_set(local_dir, capsys, digits):
    message = _fails(capsys, "requests", "add", "--model-dir", local_dir, "--id", "99999")
    assert "example id 99999 is not in the training set" in message
    test_row = int(digits.test_rows[0])
    assert "is not in the training set" in _fails(capsys, "requests", "add", "--model-dir", local_dir, "--id", test_row)
    with _open(local_dir, None) as model:
        assert model.requests() == []
        with pytest.raises(ForgetSetError):
            model.add_request([99999])


def test_bad_unreachable_database_names_the_url_without_its_password(local_dir, capsys):
    url = "postgresql://alice:s3cret-pw@127.0.0.1:1/ledger"
    message = _fails(capsys, "requests", "list", "--model-dir", local_dir, "--db", url)
    assert "postgresql://alice:***@127.0.0.1:1/ledger" in message and "s3cret-pw" not in message
    assert "not a database URL" in _fails(capsys, "requests", "list", "--model-dir", local_dir, "--db", "nonsense")


def test_bad_model_directory_from_another_dataset(local_dir, tmp_path, capsys):
    csv = tmp_path / "other.csv"
    rng = np.random.default_rng(0)
    csv.write_text("a,b,label\n" + "".join(f"{x:.3f},{y:.3f},{int(x > 0)}\n" for x, y in rng.normal(size=(40, 2))))
    message = _fails(capsys, "requests", "process", "--model-dir", local_dir, "--data", f"csv:{csv}", "--target", "label")
    assert "is not the data model directory" in message and "sha256" in message
    with _open(local_dir, None) as model:
        assert len(model.history()) == 1
    with pytest.raises(DataError, match="is not the data"):
        ShardedModel.open(local_dir, None, splits=load_digits().subsample_train(500))


def test_bad_more_shards_than_examples(tmp_path, capsys):
    message = _fails(capsys, "sisa", "train", "--data", "digits", "--shards", "5000", "--out", tmp_path / "m")
    assert "larger than the 1437 training examples" in message
    assert not (tmp_path / "m").exists() and list(tmp_path.iterdir()) == []


def test_bad_corrupted_assignment_file(local_dir, capsys):
    path = local_dir / ASSIGNMENT
    payload = bytearray(path.read_bytes())
    payload[-3] ^= 0xFF
    path.write_bytes(bytes(payload))
    message = _fails(capsys, "requests", "add", "--model-dir", local_dir, "--id", "0")
    assert "assignment file" in message and "corrupted" in message
    path.write_bytes(b"\x00" * 5)
    assert "cannot be read" in _fails(capsys, "requests", "add", "--model-dir", local_dir, "--id", "0")


def test_bad_output_directory_and_model_directory(local_dir, tmp_path, capsys):
    assert "not empty" in _fails(capsys, "sisa", "train", "--data", "digits", "--out", local_dir)
    assert "does not exist" in _fails(capsys, "requests", "list", "--model-dir", tmp_path / "nowhere")
    (tmp_path / "plain").mkdir()
    assert "not a SISA model directory" in _fails(capsys, "requests", "list", "--model-dir", tmp_path / "plain")
    assert "--id N" in _fails(capsys, "requests", "add", "--model-dir", local_dir)


def test_bad_database_without_this_model(local_dir, tmp_path, capsys):
    other = f"sqlite:///{tmp_path / 'other.sqlite'}"
    assert "no ledger database at" in _fails(capsys, "requests", "list", "--model-dir", local_dir, "--db", other)
    assert not (tmp_path / "other.sqlite").exists(), "a mistyped --db must not create a ledger"
    Ledger.open(other).close()  # an existing ledger that never saw this model
    assert "has no record of model" in _fails(capsys, "requests", "list", "--model-dir", local_dir, "--db", other)
    (local_dir / "ledger.sqlite").unlink()
    assert "no ledger at" in _fails(capsys, "requests", "list", "--model-dir", local_dir)
    assert not (local_dir / "ledger.sqlite").exists()  # a failed command does not create one


def test_train_into_existing_output_raises_output_error(local_dir, digits):
    with pytest.raises(OutputError):
        _train(local_dir, None, digits=digits)


# -- a real full disk ---------------------------------------------------------------------
@pytest.fixture
def small_disk(tmp_path):
    """A 6 MiB tmpfs mounted at tmp_path/disk (needs root or CAP_SYS_ADMIN; skipped otherwise)."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(mount_point)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({mounted.stderr.strip() or 'mount failed'}); needs root or CAP_SYS_ADMIN")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], capture_output=True)


def _fill(disk: Path) -> Path:
    """Write a filler file until the filesystem is full; returns it (delete it to free the space)."""
    import errno

    filler = disk / "filler"
    with open(filler, "wb") as handle:
        try:
            while True:
                handle.write(b"\0" * 65536)
                handle.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    with pytest.raises(OSError):  # positive control: the disk really is full
        (disk / "probe").write_bytes(b"\0" * 65536)
    return filler


def test_a_full_checkpoint_disk_leaves_requests_pending_and_they_resume_once_space_is_freed(small_disk, tmp_path, capsys, digits):
    db = f"sqlite:///{tmp_path / 'ledger.sqlite'}"  # the ledger on a healthy disk, the checkpoints on the small one
    _train(small_disk / "model", db, digits=digits)
    with _open(small_disk / "model", db, digits) as model:
        example = int(model.assignment.example_ids[0])
        request = model.add_request([example])
    filler = _fill(small_disk)
    args = ["requests", "process", "--model-dir", str(small_disk / "model"), "--db", db, "--workers", "1"]
    assert main([*args, "--fault-retries", "1", "--backoff", "0"]) == 75
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "No space left on device" in err and "1 request(s) pending" in err, err
    assert not list((small_disk / "model").rglob("*.tmp")), "no half-written checkpoint is left behind"
    with _open(small_disk / "model", db, digits) as model:
        assert model.ledger.request(request.id).status == "received" and not model.events("failure")
    filler.unlink()
    assert main(args) == 0
    with _open(small_disk / "model", db, digits) as model:
        assert model.ledger.request(request.id).status == "done"
        _assert_current_model_excludes(model, {example})


def test_a_full_ledger_disk_is_named_as_such(small_disk, tmp_path, capsys, digits):
    db = f"sqlite:///{small_disk / 'ledger.sqlite'}"
    _train(tmp_path / "model", db, digits=digits)
    with _open(tmp_path / "model", db, digits) as model:
        training_ids = [int(i) for i in model.assignment.example_ids[:40]]
    filler = _fill(small_disk)
    ids = tmp_path / "ids.txt"
    ids.write_text("\n".join(str(i) for i in training_ids))
    code = main(["requests", "add", "--model-dir", str(tmp_path / "model"), "--db", db, "--ids", str(ids)])
    err = capsys.readouterr().err.strip()
    assert code == 75 and len(err.splitlines()) == 1, err
    assert "could not be written" in err and "full" in err and "server is running" not in err, err
    filler.unlink()
    assert main(["requests", "add", "--model-dir", str(tmp_path / "model"), "--db", db, "--ids", str(ids)]) == 0


def test_a_killed_sisa_train_leaves_a_staging_folder_that_the_next_run_removes(tmp_path, digits):
    import multiprocessing
    import time

    def train_in_child() -> None:
        import torch

        torch.set_num_threads(1)
        from erasekit.core import progress

        progress.set_enabled(False)
        _train(tmp_path / "model", None, shards=4, slices=2, digits=digits)
        os._exit(0)

    child = multiprocessing.get_context("fork").Process(target=train_in_child)
    child.start()
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(".model.erasekit-staging-*")) and time.monotonic() < deadline:
        time.sleep(0.005)
    os.kill(child.pid, signal.SIGKILL)
    child.join()
    leftovers = list(tmp_path.glob(".model.erasekit-staging-*"))
    assert leftovers and not (tmp_path / "model").exists(), "positive control: the kill left a staging folder"
    _train(tmp_path / "model", None, digits=digits)
    assert not any(p.exists() for p in leftovers) and (tmp_path / "model" / "sisa.json").is_file()
