"""Named gateway instances on one database: ``gateway_instances``.

Each instance records its broker user (with a Mosquitto ``$7$`` hash of its password, so
any instance can write broker files that admit every instance) and a check value of its
master key (an instance started with different key files is refused: its device keys,
QR MACs and web sessions would not match the others').

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

INT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table("gateway_instances",
                    sa.Column("name", sa.Text(), nullable=False),
                    sa.Column("mqtt_username", sa.Text(), nullable=False),
                    sa.Column("mqtt_password_hash", sa.Text(), nullable=False),
                    sa.Column("key_check", sa.Text(), nullable=False),
                    sa.Column("host", sa.Text(), nullable=False),
                    sa.Column("pid", INT, nullable=False),
                    sa.Column("started_at_ms", INT, nullable=False),
                    sa.PrimaryKeyConstraint("name"))


def downgrade() -> None:
    op.drop_table("gateway_instances")
