"""The ledger's tables (SQLAlchemy 2). The schema is created and upgraded only by the versioned
migrations in ``migrations/`` (Alembic); a test checks that they and these classes agree.

All tables carry the ``erasekit_`` prefix so the ledger can share a PostgreSQL database.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Integer, String, Text, TypeDecorator
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator):
    """Stored as naive UTC (SQLite has no time zones); always returned as aware UTC."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are ambiguous; pass an aware UTC datetime")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value, dialect):
        return None if value is None else value.replace(tzinfo=UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class ShardedModelRow(Base):
    """One SISA model directory; its lock is the lease a processing worker holds."""

    __tablename__ = "erasekit_models"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    directory: Mapped[str] = mapped_column(Text)
    data_spec: Mapped[str] = mapped_column(Text)
    data_sha256: Mapped[str] = mapped_column(String(64))
    num_shards: Mapped[int] = mapped_column(Integer)
    num_slices: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    current_version: Mapped[int] = mapped_column(Integer)
    lock_holder: Mapped[str | None] = mapped_column(String(200), nullable=True)
    lock_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class ModelVersionRow(Base):
    """A model version: the checkpoint hashes per shard and slice, and what it removed."""

    __tablename__ = "erasekit_model_versions"
    model_id: Mapped[str] = mapped_column(ForeignKey("erasekit_models.id"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    parent_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    kind: Mapped[str] = mapped_column(String(16))  # train | deletion | repair
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    checkpoints: Mapped[list] = mapped_column(JSON)  # [shard][slice] → sha256
    removed_example_ids: Mapped[list] = mapped_column(JSON)  # removed by this version (not cumulative)
    retrained_shards: Mapped[list] = mapped_column(JSON)
    seconds: Mapped[float | None] = mapped_column(Float, nullable=True)


class RequestRow(Base):
    """A deletion request: received → scheduled → done | failed."""

    __tablename__ = "erasekit_requests"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_id: Mapped[str] = mapped_column(ForeignKey("erasekit_models.id"), index=True)
    example_ids: Mapped[list] = mapped_column(JSON)
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), index=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    scheduled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    model_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    worker: Mapped[str | None] = mapped_column(String(200), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)


class DeletionRow(Base):
    """An example removed from the model; the primary key makes a second removal impossible."""

    __tablename__ = "erasekit_deletions"
    model_id: Mapped[str] = mapped_column(ForeignKey("erasekit_models.id"), primary_key=True)
    example_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("erasekit_requests.id"))
    version: Mapped[int] = mapped_column(Integer)


class EventRow(Base):
    """The ledger's log: retraining, corruption found and repaired, failures."""

    __tablename__ = "erasekit_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_id: Mapped[str] = mapped_column(ForeignKey("erasekit_models.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    level: Mapped[str] = mapped_column(String(16))  # info | warning | error
    kind: Mapped[str] = mapped_column(String(32))  # retrain | corruption | failure | ...
    message: Mapped[str] = mapped_column(Text)
    shard: Mapped[int | None] = mapped_column(Integer, nullable=True)
    version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    request_ids: Mapped[list | None] = mapped_column(JSON, nullable=True)
