"""Alembic environment for the erasekit ledger; run through erasekit.ledger.migrate()."""

from alembic import context

from erasekit.ledger.db import Base

VERSION_TABLE = "erasekit_alembic_version"

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, version_table=VERSION_TABLE)
with context.begin_transaction():
    context.run_migrations()
