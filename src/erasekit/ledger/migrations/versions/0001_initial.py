"""Initial ledger schema: models, versions, requests, deletions, events.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from erasekit.ledger.db import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "erasekit_models",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("directory", sa.Text(), nullable=False),
        sa.Column("data_spec", sa.Text(), nullable=False),
        sa.Column("data_sha256", sa.String(64), nullable=False),
        sa.Column("num_shards", sa.Integer(), nullable=False),
        sa.Column("num_slices", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("current_version", sa.Integer(), nullable=False),
        sa.Column("lock_holder", sa.String(200), nullable=True),
        sa.Column("lock_expires_at", UTCDateTime(), nullable=True),
    )
    op.create_table(
        "erasekit_model_versions",
        sa.Column("model_id", sa.String(36), sa.ForeignKey("erasekit_models.id"), primary_key=True),
        sa.Column("version", sa.Integer(), primary_key=True),
        sa.Column("parent_version", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("checkpoints", sa.JSON(), nullable=False),
        sa.Column("removed_example_ids", sa.JSON(), nullable=False),
        sa.Column("retrained_shards", sa.JSON(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=True),
    )
    op.create_table(
        "erasekit_requests",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("model_id", sa.String(36), sa.ForeignKey("erasekit_models.id"), nullable=False),
        sa.Column("example_ids", sa.JSON(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("scheduled_at", UTCDateTime(), nullable=True),
        sa.Column("done_at", UTCDateTime(), nullable=True),
        sa.Column("model_version", sa.Integer(), nullable=True),
        sa.Column("worker", sa.String(200), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
    )
    op.create_index("ix_erasekit_requests_model_id", "erasekit_requests", ["model_id"])
    op.create_index("ix_erasekit_requests_status", "erasekit_requests", ["status"])
    op.create_table(
        "erasekit_deletions",
        sa.Column("model_id", sa.String(36), sa.ForeignKey("erasekit_models.id"), primary_key=True),
        sa.Column("example_id", sa.Integer(), primary_key=True),
        sa.Column("request_id", sa.Integer(), sa.ForeignKey("erasekit_requests.id"), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
    )
    op.create_table(
        "erasekit_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("model_id", sa.String(36), sa.ForeignKey("erasekit_models.id"), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("shard", sa.Integer(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("request_ids", sa.JSON(), nullable=True),
    )
    op.create_index("ix_erasekit_events_model_id", "erasekit_events", ["model_id"])


def downgrade() -> None:
    op.drop_index("ix_erasekit_events_model_id", "erasekit_events")
    op.drop_table("erasekit_events")
    op.drop_table("erasekit_deletions")
    op.drop_index("ix_erasekit_requests_status", "erasekit_requests")
    op.drop_index("ix_erasekit_requests_model_id", "erasekit_requests")
    op.drop_table("erasekit_requests")
    op.drop_table("erasekit_model_versions")
    op.drop_table("erasekit_models")
