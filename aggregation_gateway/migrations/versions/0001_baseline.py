"""Baseline: the gateway"s tables as they were before revisions, adopted in place.

A database made before migrations existed (the gateway created its tables itself, with
``CREATE TABLE IF NOT EXISTS`` and a few columns added on open) already holds these
tables: they are kept with their rows, and only what such a file may lack is added. An
empty database gets every table.

Revision ID: 0001
Revises:
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

INT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

#: Columns that files of the first releases gained on open, later than their tables.
_LATE_COLUMNS = (("sales", "voided_at_ms"), ("sales", "void_record"),
                 ("devices", "rotated_at_ms"))


def upgrade() -> None:
    op.create_table("alerts",
        sa.Column("id", INT, autoincrement=True, nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("payment_id", sa.Text(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("seen", INT, server_default=sa.text("1"), nullable=False),
        sa.Column("first_at_ms", INT, nullable=False),
        sa.Column("last_at_ms", INT, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("kind", "payment_id"),
        sqlite_autoincrement=True,
        if_not_exists=True,
    )
    op.create_table("channel_calls",
        sa.Column("id", INT, autoincrement=True, nullable=False),
        sa.Column("channel", sa.Text(), nullable=False),
        sa.Column("method", sa.Text(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("request", sa.Text(), nullable=False),
        sa.Column("status", INT, nullable=True),
        sa.Column("response", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("at_ms", INT, nullable=False),
        sa.Column("elapsed_ms", INT, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
        if_not_exists=True,
    )
    op.create_table("link_status",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("at_ms", INT, nullable=False),
        sa.PrimaryKeyConstraint("name"),
        if_not_exists=True,
    )
    op.create_table("managers",
        sa.Column("username", sa.Text(), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("created_at_ms", INT, nullable=False),
        sa.PrimaryKeyConstraint("username"),
        if_not_exists=True,
    )
    op.create_table("merchants",
        sa.Column("merchant_id", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("org", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("merchant_id"),
        if_not_exists=True,
    )
    op.create_table("notifications",
        sa.Column("channel", sa.Text(), nullable=False),
        sa.Column("notify_id", sa.Text(), nullable=False),
        sa.Column("payment_id", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("received_at_ms", INT, nullable=False),
        sa.PrimaryKeyConstraint("channel", "notify_id"),
        if_not_exists=True,
    )
    op.create_table("outbox",
        sa.Column("id", INT, autoincrement=True, nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("record_id", sa.Text(), nullable=False),
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("created_at_ms", INT, nullable=False),
        sa.Column("published_at_ms", INT, nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("kind", "record_id"),
        sqlite_autoincrement=True,
        if_not_exists=True,
    )
    op.create_index("outbox_unpublished", "outbox", ["published_at_ms", "id"], unique=False, if_not_exists=True)
    op.create_table("payment_events",
        sa.Column("id", INT, autoincrement=True, nullable=False),
        sa.Column("payment_id", sa.Text(), nullable=False),
        sa.Column("from_status", sa.Text(), nullable=False),
        sa.Column("to_status", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("accepted", INT, nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("at_ms", INT, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
        if_not_exists=True,
    )
    op.create_index("payment_events_payment", "payment_events", ["payment_id"], unique=False, if_not_exists=True)
    op.create_table("payments",
        sa.Column("payment_id", sa.Text(), nullable=False),
        sa.Column("device_id", sa.Text(), nullable=False),
        sa.Column("merchant_id", sa.Text(), nullable=False),
        sa.Column("order_no", INT, nullable=False),
        sa.Column("nonce", sa.Text(), nullable=False),
        sa.Column("amount_fen", INT, nullable=False),
        sa.Column("currency", sa.Text(), nullable=False),
        sa.Column("qr_issued_at", INT, nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("channel", sa.Text(), nullable=False),
        sa.Column("channel_order_id", sa.Text(), nullable=True),
        sa.Column("checkout_url", sa.Text(), nullable=True),
        sa.Column("channel_txn_id", sa.Text(), nullable=True),
        sa.Column("payer_id", sa.Text(), nullable=True),
        sa.Column("paid_at_ms", INT, nullable=True),
        sa.Column("refunded_fen", INT, server_default=sa.text("0"), nullable=False),
        sa.Column("created_at_ms", INT, nullable=False),
        sa.Column("updated_at_ms", INT, nullable=False),
        sa.Column("last_query_at_ms", INT, nullable=True),
        sa.PrimaryKeyConstraint("payment_id"),
        sa.UniqueConstraint("device_id", "order_no"),
        if_not_exists=True,
    )
    op.create_index("payments_merchant", "payments", ["merchant_id", "paid_at_ms"], unique=False, if_not_exists=True)
    op.create_index("payments_status", "payments", ["status", "created_at_ms"], unique=False, if_not_exists=True)
    op.create_table("reconciliation_items",
        sa.Column("id", INT, autoincrement=True, nullable=False),
        sa.Column("first_date", sa.Text(), nullable=False),
        sa.Column("last_date", sa.Text(), nullable=False),
        sa.Column("out_trade_no", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("resolved_on", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("out_trade_no", "kind"),
        sqlite_autoincrement=True,
        if_not_exists=True,
    )
    op.create_table("reconciliation_runs",
        sa.Column("statement_date", sa.Text(), nullable=False),
        sa.Column("run_at_ms", INT, nullable=False),
        sa.Column("matched", INT, nullable=False),
        sa.Column("mismatches", INT, nullable=False),
        sa.PrimaryKeyConstraint("statement_date"),
        if_not_exists=True,
    )
    op.create_table("refunds",
        sa.Column("refund_id", sa.Text(), nullable=False),
        sa.Column("merchant_id", sa.Text(), nullable=False),
        sa.Column("refund_no", sa.Text(), nullable=False),
        sa.Column("payment_id", sa.Text(), nullable=False),
        sa.Column("amount_fen", INT, nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("channel_refund_id", sa.Text(), nullable=True),
        sa.Column("requested_by", sa.Text(), nullable=False),
        sa.Column("created_at_ms", INT, nullable=False),
        sa.PrimaryKeyConstraint("refund_id"),
        sa.UniqueConstraint("merchant_id", "refund_no"),
        if_not_exists=True,
    )
    op.create_table("rejected_messages",
        sa.Column("id", INT, autoincrement=True, nullable=False),
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("at_ms", INT, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
        if_not_exists=True,
    )
    op.create_table("sales",
        sa.Column("device_id", sa.Text(), nullable=False),
        sa.Column("seq", INT, nullable=False),
        sa.Column("sale_id", sa.Text(), nullable=False),
        sa.Column("record", sa.Text(), nullable=False),
        sa.Column("received_at_ms", INT, nullable=False),
        sa.Column("voided_at_ms", INT, nullable=True),
        sa.Column("void_record", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("device_id", "seq", "sale_id"),
        if_not_exists=True,
    )
    op.create_index("sales_sale_id", "sales", ["sale_id"], unique=False, if_not_exists=True)
    op.create_table("statement_items",
        sa.Column("statement_date", sa.Text(), nullable=False),
        sa.Column("out_trade_no", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("amount_fen", INT, nullable=False),
        sa.Column("fee_fen", INT, nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("statement_date", "out_trade_no", "kind"),
        if_not_exists=True,
    )
    op.create_table("web_sessions",
        sa.Column("session_hash", sa.Text(), nullable=False),
        sa.Column("username", sa.Text(), nullable=False),
        sa.Column("csrf_token", sa.Text(), nullable=False),
        sa.Column("expires_at_ms", INT, nullable=False),
        sa.PrimaryKeyConstraint("session_hash"),
        if_not_exists=True,
    )
    op.create_table("devices",
        sa.Column("device_id", sa.Text(), nullable=False),
        sa.Column("merchant_id", sa.Text(), nullable=False),
        sa.Column("key_version", INT, nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("enrolled_at_ms", INT, nullable=False),
        sa.Column("claimed_at_ms", INT, nullable=True),
        sa.Column("revoked_at_ms", INT, nullable=True),
        sa.Column("rotated_at_ms", INT, nullable=True),
        sa.ForeignKeyConstraint(["merchant_id"], ["merchants.merchant_id"]),
        sa.PrimaryKeyConstraint("device_id"),
        if_not_exists=True,
    )
    op.create_table("enrolment_codes",
        sa.Column("code_hash", sa.Text(), nullable=False),
        sa.Column("device_id", sa.Text(), nullable=False),
        sa.Column("key_version", INT, nullable=False),
        sa.Column("expires_at_ms", INT, nullable=False),
        sa.Column("used_at_ms", INT, nullable=True),
        sa.ForeignKeyConstraint(["device_id"], ["devices.device_id"]),
        sa.PrimaryKeyConstraint("code_hash"),
        if_not_exists=True,
    )

    inspector = sa.inspect(op.get_bind())
    for table, column in _LATE_COLUMNS:
        if column not in {found["name"] for found in inspector.get_columns(table)}:
            op.add_column(table, sa.Column(column, sa.Text() if column == "void_record"
                                           else INT, nullable=True))


def downgrade() -> None:
    raise NotImplementedError("the baseline is not undone: restore a backup instead")
