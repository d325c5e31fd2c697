"""The deletion-request ledger: requests, model versions, applied deletions and the event log.

SQLite file by default, PostgreSQL by URL, the same schema through SQLAlchemy and the
versioned migrations. Only the worker holding a model's lock may schedule its requests or
commit a version, and a version commit is one transaction that also marks its requests done —
so a crash at any point leaves either the old state or the new one, never half of each.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, func, or_, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.orm import Session

from erasekit.core.errors import LedgerError, StorageFault
from erasekit.core.extras import require
from erasekit.ledger.db import (
    DeletionRow,
    EventRow,
    ModelVersionRow,
    RequestRow,
    ShardedModelRow,
    utcnow,
)

STATUSES = ("received", "scheduled", "done", "failed")
MIGRATIONS = Path(__file__).with_name("migrations")


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat(timespec="seconds")


@dataclass(frozen=True)
class DeletionRequest:
    """One request as the ledger holds it. Times are aware UTC datetimes."""

    id: int
    example_ids: tuple[int, ...]
    reason: str
    status: str
    received_at: datetime
    scheduled_at: datetime | None
    done_at: datetime | None
    model_version: int | None
    error: str | None

    def pending_seconds(self, now: datetime | None = None) -> float:
        """How long the request has waited (until done, or until ``now`` while pending)."""
        end = self.done_at or now or utcnow()
        return (end - self.received_at).total_seconds()

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "example_ids": list(self.example_ids),
            "reason": self.reason,
            "status": self.status,
            "received_at": _iso(self.received_at),
            "scheduled_at": _iso(self.scheduled_at),
            "done_at": _iso(self.done_at),
            "model_version": self.model_version,
            "error": self.error,
        }

    @classmethod
    def _from_row(cls, row: RequestRow) -> DeletionRequest:
        return cls(
            row.id,
            tuple(int(i) for i in row.example_ids),
            row.reason,
            row.status,
            row.received_at,
            row.scheduled_at,
            row.done_at,
            row.model_version,
            row.error,
        )


@dataclass(frozen=True)
class ModelVersion:
    """A model version: its checkpoints ([shard][slice] → sha256) and what it removed."""

    version: int
    parent_version: int | None
    kind: str  # train | deletion | repair
    created_at: datetime
    checkpoints: tuple[tuple[str, ...], ...]
    removed_example_ids: tuple[int, ...]
    retrained_shards: tuple[int, ...]
    seconds: float | None

    def to_dict(self) -> dict:
        return {
            "version": self.version,
            "parent_version": self.parent_version,
            "kind": self.kind,
            "created_at": _iso(self.created_at),
            "removed_example_ids": list(self.removed_example_ids),
            "retrained_shards": list(self.retrained_shards),
            "seconds": self.seconds,
        }

    @classmethod
    def _from_row(cls, row: ModelVersionRow) -> ModelVersion:
        return cls(
            row.version,
            row.parent_version,
            row.kind,
            row.created_at,
            tuple(tuple(s) for s in row.checkpoints),
            tuple(int(i) for i in row.removed_example_ids),
            tuple(int(s) for s in row.retrained_shards),
            row.seconds,
        )


@dataclass(frozen=True)
class LedgerEvent:
    """One line of the ledger's log."""

    at: datetime
    level: str
    kind: str
    message: str
    shard: int | None
    version: int | None
    request_ids: tuple[int, ...]

    def to_dict(self) -> dict:
        return {
            "at": _iso(self.at),
            "level": self.level,
            "kind": self.kind,
            "message": self.message,
            "shard": self.shard,
            "version": self.version,
            "request_ids": list(self.request_ids),
        }


@dataclass(frozen=True)
class EventRecord:
    """An event to write (inside a version commit or on its own)."""

    level: str
    kind: str
    message: str
    shard: int | None = None
    request_ids: tuple[int, ...] = ()


def redact(url: str) -> str:
    """The URL with its password replaced by ***, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable URL>"


def worker_identity() -> str:
    """``host:pid:random`` — unique per process, and lets a worker on the same host spot a dead holder."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _holder_is_dead(holder: str) -> bool:
    host, _, rest = holder.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _rowcount(result: Any) -> int:
    """Rows matched by an UPDATE (a CursorResult; typed as a plain Result by SQLAlchemy's stubs)."""
    return int(result.rowcount)


def _engine(url: str) -> Engine:
    shown = redact(url)
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise LedgerError(f"--db '{shown}' is not a database URL; use sqlite:///PATH or postgresql://USER@HOST/DB") from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")  # psycopg 3 is the supported driver
    if parsed.get_backend_name() == "postgresql":
        require("psycopg", "a PostgreSQL ledger")  # LGPL, so an optional extra
    try:
        if parsed.get_backend_name() == "sqlite":
            engine = create_engine(parsed, connect_args={"timeout": 60})

            @event.listens_for(engine, "connect")
            def _sqlite_connect(dbapi_connection, _record):
                dbapi_connection.isolation_level = None  # let the begin hook below issue BEGIN
                dbapi_connection.execute("PRAGMA journal_mode=WAL")
                dbapi_connection.execute("PRAGMA foreign_keys=ON")

            @event.listens_for(engine, "begin")
            def _sqlite_begin(connection):
                connection.exec_driver_sql("BEGIN IMMEDIATE")  # take the write lock up front: no upgrade deadlocks
        else:
            engine = create_engine(parsed, pool_pre_ping=True, connect_args={"connect_timeout": 10})
    except (NoSuchModuleError, ModuleNotFoundError) as exc:
        raise LedgerError(f"no database driver for '{shown}' ({exc}); SQLite and PostgreSQL (psycopg) are supported") from None
    return engine


def _error_text(url: str, exc: Exception) -> str:
    """The driver's first line, with any password in it masked."""
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    password = make_url(url).password if "://" in url else None
    return text.replace(str(password), "***") if password else text


class LedgerStorageFault(LedgerError, StorageFault):
    """The ledger database could not be written because its disk is full, failing or read-only."""


# what SQLite and PostgreSQL say when the storage under the database fails, and what it means
_STORAGE_MESSAGES = (
    (("database or disk is full", "no space left", "could not extend file", "disk full"), "the disk that holds it is full"),
    (("disk i/o error",), "the disk that holds it failed a read or write (it may be full or failing)"),
    (("readonly database", "read-only", "permission denied"), "it is read-only or not permitted"),
)


def _storage_fault(url: str, text: str) -> LedgerStorageFault | None:
    lowered = text.lower()
    for needles, meaning in _STORAGE_MESSAGES:
        if any(n in lowered for n in needles):
            return LedgerStorageFault(
                f"the ledger database {redact(url)} could not be written: {text} — {meaning}; fix that (check free "
                "space with df) and run the command again: the failed step recorded nothing and pending requests stay pending"
            )
    return None


def _connect_error(url: str, exc: Exception) -> LedgerError:
    text = _error_text(url, exc)
    fault = _storage_fault(url, text)
    if fault is not None:
        return fault
    return LedgerError(f"cannot reach the ledger database {redact(url)}: {text}; check the URL and that the server is running")


def _database_error(url: str, exc: DBAPIError) -> LedgerError:
    """A one-line error for a failed statement, saying what happened to the database."""
    text = _error_text(url, exc)
    fault = _storage_fault(url, text)
    if fault is not None:
        return fault
    if "database is locked" in text.lower():
        return LedgerError(
            f"the ledger database {redact(url)} stayed locked by another process for over 60 s; run the command again"
        )
    return LedgerError(f"the ledger database {redact(url)} failed: {text}")


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration (Alembic, version table erasekit_alembic_version)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def schema_revision(engine: Engine) -> str | None:
    from alembic.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection, opts={"version_table": "erasekit_alembic_version"}).get_current_revision()


class Ledger:
    """Typed access to the ledger tables. Open with :meth:`open` (migrates to the newest schema)."""

    HEAD = "0001"

    def __init__(self, engine: Engine, url: str):
        self.engine = engine
        self.url = url

    @classmethod
    def open(cls, url: str, create: bool = True) -> Ledger:
        """Connect (and bring the schema to the head revision). ``create=False``: the ledger must already exist —
        a mistyped SQLite path is an error, never a new empty ledger file."""
        if not create:
            _require_existing(url)
        engine = _engine(url)
        try:
            if schema_revision(engine) != cls.HEAD:
                migrate(engine)
        except (DBAPIError, SQLAlchemyError, OSError) as exc:
            engine.dispose()
            raise _connect_error(url, exc) from None
        return cls(engine, url)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextmanager
    def _session(self) -> Iterator[Session]:
        """A session whose database failures (disk full, read-only, locked) become one-line ledger errors."""
        try:
            with Session(self.engine, expire_on_commit=False) as session:
                yield session
        except DBAPIError as exc:
            raise _database_error(self.url, exc) from None

    # -- models and versions --------------------------------------------------------------
    def register_model(
        self,
        model_id: str,
        directory: str,
        data_spec: str,
        data_sha256: str,
        num_shards: int,
        num_slices: int,
        checkpoints: Sequence[Sequence[str]],
        seconds: float,
    ) -> ModelVersion:
        now = utcnow()
        with self._session() as session, session.begin():
            session.add(
                ShardedModelRow(
                    id=model_id,
                    directory=directory,
                    data_spec=data_spec,
                    data_sha256=data_sha256,
                    num_shards=num_shards,
                    num_slices=num_slices,
                    created_at=now,
                    current_version=1,
                )
            )
            session.flush()
            row = ModelVersionRow(
                model_id=model_id,
                version=1,
                parent_version=None,
                kind="train",
                created_at=now,
                checkpoints=[list(s) for s in checkpoints],
                removed_example_ids=[],
                retrained_shards=list(range(num_shards)),
                seconds=seconds,
            )
            session.add(row)
            session.add(
                EventRow(
                    model_id=model_id,
                    at=now,
                    level="info",
                    kind="train",
                    version=1,
                    message=f"trained {num_shards} shards × {num_slices} slices in {seconds:.1f} s",
                )
            )
        return ModelVersion._from_row(row)

    def model(self, model_id: str) -> ShardedModelRow:
        with self._session() as session:
            row = session.get(ShardedModelRow, model_id)
        if row is None:
            raise LedgerError(
                f"the ledger {redact(self.url)} has no record of model {model_id}; pass the --db that `erasekit sisa train` used"
            )
        return row

    def versions(self, model_id: str) -> list[ModelVersion]:
        with self._session() as session:
            rows = session.scalars(
                select(ModelVersionRow).where(ModelVersionRow.model_id == model_id).order_by(ModelVersionRow.version)
            ).all()
        return [ModelVersion._from_row(r) for r in rows]

    def version(self, model_id: str, version: int | None = None) -> ModelVersion:
        """One version (default: the current one)."""
        number = self.model(model_id).current_version if version is None else version
        with self._session() as session:
            row = session.get(ModelVersionRow, (model_id, number))
        if row is None:
            raise LedgerError(f"model {model_id} has no version {number}")
        return ModelVersion._from_row(row)

    def deleted_ids(self, model_id: str) -> dict[int, int]:
        """Every example removed so far → the version that removed it."""
        with self._session() as session:
            rows = session.execute(
                select(DeletionRow.example_id, DeletionRow.version).where(DeletionRow.model_id == model_id)
            ).all()
        return {int(e): int(v) for e, v in rows}

    def versions_containing(self, model_id: str, example_id: int) -> list[int]:
        """Versions trained with ``example_id`` in them (all versions before the one that removed it)."""
        with self._session() as session:
            removed_in = session.scalar(
                select(DeletionRow.version).where(DeletionRow.model_id == model_id, DeletionRow.example_id == int(example_id))
            )
        return [v.version for v in self.versions(model_id) if removed_in is None or v.version < removed_in]

    # -- requests -------------------------------------------------------------------------
    def add_request(self, model_id: str, example_ids: Iterable[int], reason: str = "") -> DeletionRequest:
        ids = sorted({int(i) for i in example_ids})
        if not ids:
            raise LedgerError("a deletion request needs at least one example id")
        self.model(model_id)
        row = RequestRow(model_id=model_id, example_ids=ids, reason=reason, status="received", received_at=utcnow())
        with self._session() as session, session.begin():
            session.add(row)
        return DeletionRequest._from_row(row)

    def add_requests(self, model_id: str, batch: Sequence[tuple[Iterable[int], str]]) -> list[DeletionRequest]:
        """Record many requests in one transaction: all of them or none."""
        rows = []
        for example_ids, reason in batch:
            ids = sorted({int(i) for i in example_ids})
            if not ids:
                raise LedgerError("every deletion request needs at least one example id")
            rows.append(RequestRow(model_id=model_id, example_ids=ids, reason=reason, status="received", received_at=utcnow()))
        if not rows:
            raise LedgerError("no deletion requests to record")
        self.model(model_id)
        with self._session() as session, session.begin():
            session.add_all(rows)
        return [DeletionRequest._from_row(row) for row in rows]

    def requests(self, model_id: str, status: str | None = None) -> list[DeletionRequest]:
        if status is not None and status not in STATUSES:
            raise LedgerError(f"unknown status '{status}'; use one of {', '.join(STATUSES)}")
        query = select(RequestRow).where(RequestRow.model_id == model_id).order_by(RequestRow.id)
        if status is not None:
            query = query.where(RequestRow.status == status)
        with self._session() as session:
            return [DeletionRequest._from_row(r) for r in session.scalars(query).all()]

    def request(self, request_id: int) -> DeletionRequest:
        with self._session() as session:
            row = session.get(RequestRow, request_id)
        if row is None:
            raise LedgerError(f"no deletion request with id {request_id}")
        return DeletionRequest._from_row(row)

    def retry(self, model_id: str, request_id: int) -> DeletionRequest:
        """Put a failed request back to received."""
        with self._session() as session, session.begin():
            row = session.get(RequestRow, request_id)
            if row is None or row.model_id != model_id:
                raise LedgerError(f"no deletion request with id {request_id} for this model")
            if row.status != "failed":
                raise LedgerError(f"request {request_id} is {row.status}; only failed requests can be retried")
            row.status, row.error, row.worker, row.scheduled_at = "received", None, None, None
        return DeletionRequest._from_row(row)

    # -- events ---------------------------------------------------------------------------
    def log(self, model_id: str, record: EventRecord, version: int | None = None) -> None:
        with self._session() as session, session.begin():
            session.add(self._event_row(model_id, record, version))

    @staticmethod
    def _event_row(model_id: str, record: EventRecord, version: int | None) -> EventRow:
        return EventRow(
            model_id=model_id,
            at=utcnow(),
            level=record.level,
            kind=record.kind,
            message=record.message,
            shard=record.shard,
            version=version,
            request_ids=list(record.request_ids) or None,
        )

    def events(self, model_id: str, kind: str | None = None) -> list[LedgerEvent]:
        query = select(EventRow).where(EventRow.model_id == model_id).order_by(EventRow.id)
        if kind is not None:
            query = query.where(EventRow.kind == kind)
        with self._session() as session:
            rows = session.scalars(query).all()
        return [LedgerEvent(r.at, r.level, r.kind, r.message, r.shard, r.version, tuple(r.request_ids or ())) for r in rows]

    # -- the processing lock --------------------------------------------------------------
    def acquire(self, model_id: str, worker: str, lease_seconds: float) -> str | None:
        """Take the model's lock; returns None on success, else the current holder.

        Free, expired, or held by a dead process on this host all count as free.
        """
        now = utcnow()
        until = now + timedelta(seconds=lease_seconds)
        with self._session() as session, session.begin():
            taken = _rowcount(
                session.execute(
                    update(ShardedModelRow)
                    .where(
                        ShardedModelRow.id == model_id,
                        or_(
                            ShardedModelRow.lock_holder.is_(None),
                            ShardedModelRow.lock_expires_at < now,
                            ShardedModelRow.lock_holder == worker,
                        ),
                    )
                    .values(lock_holder=worker, lock_expires_at=until)
                )
            )
            if taken == 1:
                return None
            holder = session.scalar(select(ShardedModelRow.lock_holder).where(ShardedModelRow.id == model_id))
            if holder is not None and _holder_is_dead(holder):
                taken = _rowcount(
                    session.execute(
                        update(ShardedModelRow)
                        .where(ShardedModelRow.id == model_id, ShardedModelRow.lock_holder == holder)
                        .values(lock_holder=worker, lock_expires_at=until)
                    )
                )
                if taken == 1:
                    session.add(
                        self._event_row(
                            model_id,
                            EventRecord("warning", "lock", f"took over the lock of {holder}, which is no longer running"),
                            None,
                        )
                    )
                    return None
            return holder or "unknown"

    def renew(self, model_id: str, worker: str, lease_seconds: float) -> None:
        with self._session() as session, session.begin():
            held = _rowcount(
                session.execute(
                    update(ShardedModelRow)
                    .where(ShardedModelRow.id == model_id, ShardedModelRow.lock_holder == worker)
                    .values(lock_expires_at=utcnow() + timedelta(seconds=lease_seconds))
                )
            )
        if held != 1:
            raise LedgerError(f"worker {worker} lost the lock on model {model_id} (its lease expired); nothing was committed")

    def release(self, model_id: str, worker: str) -> None:
        with self._session() as session, session.begin():
            session.execute(
                update(ShardedModelRow)
                .where(ShardedModelRow.id == model_id, ShardedModelRow.lock_holder == worker)
                .values(lock_holder=None, lock_expires_at=None)
            )

    def _check_holder(self, session: Session, model_id: str, worker: str) -> ShardedModelRow:
        row = session.get(ShardedModelRow, model_id, with_for_update=True)
        if row is None or row.lock_holder != worker:
            raise LedgerError(f"worker {worker} does not hold the lock on model {model_id}; nothing was committed")
        return row

    def claim(self, model_id: str, worker: str, limit: int | None = None) -> list[DeletionRequest]:
        """Schedule pending requests (received, or scheduled by a worker that died) for ``worker``."""
        now = utcnow()
        with self._session() as session, session.begin():
            self._check_holder(session, model_id, worker)
            query = (
                select(RequestRow)
                .where(RequestRow.model_id == model_id, RequestRow.status.in_(("received", "scheduled")))
                .order_by(RequestRow.id)
                .with_for_update()
            )
            if limit is not None:
                query = query.limit(limit)
            rows = session.scalars(query).all()
            for row in rows:
                row.status, row.scheduled_at, row.worker = "scheduled", now, worker
        return [DeletionRequest._from_row(r) for r in rows]

    def commit_version(
        self,
        model_id: str,
        worker: str,
        parent_version: int,
        kind: str,
        checkpoints: Sequence[Sequence[str]],
        removed: dict[int, int],
        retrained_shards: Sequence[int],
        done_request_ids: Sequence[int],
        events: Sequence[EventRecord],
        seconds: float,
    ) -> ModelVersion:
        """One transaction: the new version, its deletions, its events, and its requests marked done."""
        now = utcnow()
        with self._session() as session, session.begin():
            model = self._check_holder(session, model_id, worker)
            if model.current_version != parent_version:
                raise LedgerError(
                    f"model {model_id} moved to version {model.current_version} while "
                    f"version {parent_version} was being updated; nothing was committed"
                )
            version = parent_version + 1
            row = ModelVersionRow(
                model_id=model_id,
                version=version,
                parent_version=parent_version,
                kind=kind,
                created_at=now,
                checkpoints=[list(s) for s in checkpoints],
                removed_example_ids=sorted(removed),
                retrained_shards=sorted(retrained_shards),
                seconds=seconds,
            )
            session.add(row)
            model.current_version = version
            session.flush()
            for example_id, request_id in removed.items():
                session.add(
                    DeletionRow(model_id=model_id, example_id=int(example_id), request_id=int(request_id), version=version)
                )
            self._mark_done(session, model_id, done_request_ids, version, now)
            for record in events:
                session.add(self._event_row(model_id, record, version))
        return ModelVersion._from_row(row)

    def complete(
        self, model_id: str, worker: str, request_ids: Sequence[int], version: int, events: Sequence[EventRecord] = ()
    ) -> None:
        """Mark requests done at an existing version (their examples were already removed)."""
        now = utcnow()
        with self._session() as session, session.begin():
            self._check_holder(session, model_id, worker)
            self._mark_done(session, model_id, request_ids, version, now)
            for record in events:
                session.add(self._event_row(model_id, record, version))

    @staticmethod
    def _mark_done(session: Session, model_id: str, request_ids: Sequence[int], version: int, now: datetime) -> None:
        if request_ids:
            session.execute(
                update(RequestRow)
                .where(RequestRow.model_id == model_id, RequestRow.id.in_(list(request_ids)), RequestRow.status == "scheduled")
                .values(status="done", done_at=now, model_version=version)
            )

    def unschedule(self, model_id: str, worker: str, request_ids: Sequence[int], reason: str) -> None:
        """Put requests this worker scheduled back to received (a transient fault stopped it), with a warning event."""
        self._release_batch(
            model_id,
            worker,
            request_ids,
            EventRecord("warning", "fault", reason),
            {"status": "received", "worker": None, "scheduled_at": None},
        )

    def fail(self, model_id: str, worker: str, request_ids: Sequence[int], error: str) -> None:
        """Mark requests this worker scheduled as failed (a bug stopped it); ``requests retry`` puts them back."""
        self._release_batch(
            model_id, worker, request_ids, EventRecord("error", "failure", error), {"status": "failed", "error": error}
        )

    def _release_batch(
        self, model_id: str, worker: str, request_ids: Sequence[int], record: EventRecord, values: dict[str, Any]
    ) -> None:
        """Set ``values`` on the requests ``worker`` still holds as scheduled, and log ``record`` for them, in one transaction."""
        with self._session() as session, session.begin():
            session.execute(
                update(RequestRow)
                .where(
                    RequestRow.model_id == model_id,
                    RequestRow.id.in_(list(request_ids)),
                    RequestRow.status == "scheduled",
                    RequestRow.worker == worker,
                )
                .values(values)
            )
            record = dataclasses.replace(record, request_ids=tuple(request_ids))
            session.add(self._event_row(model_id, record, None))

    def count_requests(self, model_id: str) -> dict[str, int]:
        with self._session() as session:
            rows = session.execute(
                select(RequestRow.status, func.count()).where(RequestRow.model_id == model_id).group_by(RequestRow.status)
            ).all()
        return {status: int(n) for status, n in rows}


def _require_existing(url: str) -> None:
    """Refuse a SQLite URL whose file does not exist (other databases report a missing database themselves)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return  # _engine reports a malformed URL
    database = parsed.database
    if parsed.get_backend_name() == "sqlite" and database not in (None, "", ":memory:") and not Path(database).is_file():
        raise LedgerError(f"no ledger database at {database}; check --db (it must name the ledger this model was trained with)")
