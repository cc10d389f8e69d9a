"""Several gateways on one database: outbox leases and shared rate-limit counters.

``outbox.lease_until_ms`` lets one gateway's publisher take a batch of unpublished rows
(``FOR UPDATE SKIP LOCKED``) so another publishes different rows; a lease that runs out
(its gateway died) makes the rows free again. ``rate_counters`` holds the rate limits
and login throttling every gateway on PostgreSQL counts in (``UNLOGGED`` there: counters
need no crash safety, and every scan writes some).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

INT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.add_column("outbox", sa.Column("lease_until_ms", INT, nullable=True))
    op.create_table("rate_counters",
                    sa.Column("key", sa.Text(), nullable=False),
                    sa.Column("count", INT, nullable=False),
                    sa.Column("expires_at", sa.Float(), nullable=False),
                    sa.PrimaryKeyConstraint("key"))
    if op.get_bind().dialect.name == "postgresql":
        # Counters are not money: no WAL for them (a crash empties the table).
        op.execute("ALTER TABLE rate_counters SET UNLOGGED")


def downgrade() -> None:
    op.drop_table("rate_counters")
    op.drop_column("outbox", "lease_until_ms")
