"""Alembic environment: runs on the connection skyrun hands it."""

from __future__ import annotations

from alembic import context

from skyrun.server.db.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("skyrun migrations run through skyrun.server.db.migrate, with a connection")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
