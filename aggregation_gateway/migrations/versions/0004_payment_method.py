"""How a payment was made: ``payments.method``, ``qr`` or ``payer_code``.

Payer-code (付款码) orders are charged by the gateway itself and may wait for the
shopper's password; one that never completes is reversed at the platform (closed, or
refunded in full if it was paid meanwhile), not merely closed like an unpaid QR order.
Existing rows are QR payments.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("payments", sa.Column("method", sa.Text(), nullable=False,
                                        server_default=sa.text("'qr'")))


def downgrade() -> None:
    with op.batch_alter_table("payments") as batch:
        batch.drop_column("method")
