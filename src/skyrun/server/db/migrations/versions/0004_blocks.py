"""M5: block documents; API keys' `secrets` scope

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import skyrun.server.db.types

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "blocks",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("block_type", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column(
            "data",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created", skyrun.server.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated", skyrun.server.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_blocks")),
        sa.UniqueConstraint("block_type", "name", name=op.f("uq_blocks__block_type_name")),
    )
    # Admin keys could do everything; `secrets` (reading block secrets) comes with admin.
    op.execute(
        "UPDATE api_keys SET scopes = 'read write secrets admin' WHERE scopes = 'read write admin'"
    )


def downgrade() -> None:
    op.execute(
        "UPDATE api_keys SET scopes = 'read write admin' WHERE scopes = 'read write secrets admin'"
    )
    op.execute("UPDATE api_keys SET scopes = 'read write' WHERE scopes = 'read write secrets'")
    op.drop_table("blocks")
