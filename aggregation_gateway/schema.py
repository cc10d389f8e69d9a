"""The gateway's tables, defined once (SQLAlchemy Core metadata) for SQLite and PostgreSQL.

Nothing here runs on the request path: the runtime SQL is plain text through
``database`` (no ORM). This metadata is what a fresh database is created from, what the
Alembic migrations (``aggregation_gateway/migrations``) must arrive at (a test compares a
migrated database with it), and the shape a new migration is written against.

Integers are ``BIGINT`` on PostgreSQL (millisecond timestamps, order numbers up to 2^53)
and ``INTEGER`` on SQLite, where that spelling makes ``id`` columns aliases of the rowid,
as the gateway's SQLite files have always had them.
"""

from __future__ import annotations

from functools import cache

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.schema import CreateIndex, CreateTable

__all__ = ["metadata", "HEAD_REVISION", "create_statements", "POSTGRES_AFTER_CREATE"]

#: The newest migration in ``migrations/versions``: a database stamped with it needs no
#: upgrade (checked on every open without loading Alembic; a test keeps it in step).
HEAD_REVISION = "0004"

Int = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData()


def _id() -> Column:
    return Column("id", Int, primary_key=True, autoincrement=True)


Table("managers", metadata,
      Column("username", Text, primary_key=True),
      Column("password_hash", Text, nullable=False),
      Column("created_at_ms", Int, nullable=False))
Table("merchants", metadata,
      Column("merchant_id", Text, primary_key=True),
      Column("name", Text, nullable=False),
      Column("org", Text, nullable=False))
Table("devices", metadata,
      Column("device_id", Text, primary_key=True),
      Column("merchant_id", Text, ForeignKey("merchants.merchant_id"), nullable=False),
      Column("key_version", Int, nullable=False),
      Column("status", Text, nullable=False),  # pending_claim | active | revoked
      Column("enrolled_at_ms", Int, nullable=False),
      Column("claimed_at_ms", Int),
      Column("revoked_at_ms", Int),
      Column("rotated_at_ms", Int))
Table("enrolment_codes", metadata,
      Column("code_hash", Text, primary_key=True),
      Column("device_id", Text, ForeignKey("devices.device_id"), nullable=False),
      Column("key_version", Int, nullable=False),
      Column("expires_at_ms", Int, nullable=False),
      Column("used_at_ms", Int))
Table("payments", metadata,
      Column("payment_id", Text, primary_key=True),
      Column("device_id", Text, nullable=False),
      Column("merchant_id", Text, nullable=False),
      Column("order_no", Int, nullable=False),
      Column("nonce", Text, nullable=False),
      Column("amount_fen", Int, nullable=False),
      Column("currency", Text, nullable=False),
      Column("qr_issued_at", Int, nullable=False),
      Column("status", Text, nullable=False),
      Column("channel", Text, nullable=False),
      Column("channel_order_id", Text),
      Column("checkout_url", Text),
      Column("channel_txn_id", Text),
      Column("payer_id", Text),
      Column("paid_at_ms", Int),
      Column("refunded_fen", Int, nullable=False, server_default=text("0")),
      Column("created_at_ms", Int, nullable=False),
      Column("updated_at_ms", Int, nullable=False),
      Column("last_query_at_ms", Int),
      # 'qr' (the shopper scanned the stall's code) or 'payer_code' (the vendor scanned
      # the shopper's): a payer-code order that never completes is reversed, not closed.
      Column("method", Text, nullable=False, server_default=text("'qr'")),
      UniqueConstraint("device_id", "order_no"),
      Index("payments_status", "status", "created_at_ms"),
      Index("payments_merchant", "merchant_id", "paid_at_ms"))
Table("payment_events", metadata, _id(),
      Column("payment_id", Text, nullable=False),
      Column("from_status", Text, nullable=False),
      Column("to_status", Text, nullable=False),
      Column("source", Text, nullable=False),
      Column("accepted", Int, nullable=False),
      Column("reason", Text),
      Column("at_ms", Int, nullable=False),
      Index("payment_events_payment", "payment_id"),
      sqlite_autoincrement=True)
Table("notifications", metadata,
      Column("channel", Text, nullable=False),
      Column("notify_id", Text, nullable=False),
      Column("payment_id", Text, nullable=False),
      Column("status", Text, nullable=False),
      Column("received_at_ms", Int, nullable=False),
      PrimaryKeyConstraint("channel", "notify_id"))
Table("refunds", metadata,
      Column("refund_id", Text, primary_key=True),
      Column("merchant_id", Text, nullable=False),
      Column("refund_no", Text, nullable=False),
      Column("payment_id", Text, nullable=False),
      Column("amount_fen", Int, nullable=False),
      Column("reason", Text, nullable=False),
      Column("status", Text, nullable=False),  # processing | success | failed
      Column("channel_refund_id", Text),
      Column("requested_by", Text, nullable=False),
      Column("created_at_ms", Int, nullable=False),
      UniqueConstraint("merchant_id", "refund_no"))
Table("sales", metadata,
      Column("device_id", Text, nullable=False),
      Column("seq", Int, nullable=False),
      Column("sale_id", Text, nullable=False),
      Column("record", Text, nullable=False),
      Column("received_at_ms", Int, nullable=False),
      Column("voided_at_ms", Int),  # set when the terminal re-sent it as "void"
      Column("void_record", Text),  # that MACed void record, kept as evidence
      PrimaryKeyConstraint("device_id", "seq", "sale_id"),
      Index("sales_sale_id", "sale_id"))
Table("rejected_messages", metadata, _id(),
      Column("topic", Text, nullable=False),
      Column("reason", Text, nullable=False),
      Column("at_ms", Int, nullable=False),
      sqlite_autoincrement=True)
Table("outbox", metadata, _id(),
      Column("kind", Text, nullable=False),  # payment_result | trade
      Column("record_id", Text, nullable=False),
      Column("topic", Text, nullable=False),
      Column("payload", LargeBinary, nullable=False),
      Column("created_at_ms", Int, nullable=False),
      Column("published_at_ms", Int),
      # Until when one gateway's publisher holds the row (several gateways, one outbox).
      Column("lease_until_ms", Int),
      UniqueConstraint("kind", "record_id"),
      Index("outbox_unpublished", "published_at_ms", "id"),
      sqlite_autoincrement=True)
Table("channel_calls", metadata, _id(),
      Column("channel", Text, nullable=False),
      Column("method", Text, nullable=False),
      Column("url", Text, nullable=False),
      Column("request", Text, nullable=False),
      Column("status", Int),
      Column("response", Text),
      Column("error", Text),
      Column("at_ms", Int, nullable=False),
      Column("elapsed_ms", Int, nullable=False),
      sqlite_autoincrement=True)
Table("link_status", metadata,
      Column("name", Text, primary_key=True),
      Column("state", Text, nullable=False),
      Column("at_ms", Int, nullable=False))
Table("web_sessions", metadata,
      Column("session_hash", Text, primary_key=True),
      Column("username", Text, nullable=False),
      Column("csrf_token", Text, nullable=False),
      Column("expires_at_ms", Int, nullable=False))
Table("statement_items", metadata,
      Column("statement_date", Text, nullable=False),
      Column("out_trade_no", Text, nullable=False),
      Column("kind", Text, nullable=False),
      Column("amount_fen", Int, nullable=False),
      Column("fee_fen", Int, nullable=False),
      Column("status", Text, nullable=False),
      PrimaryKeyConstraint("statement_date", "out_trade_no", "kind"))
Table("reconciliation_runs", metadata,
      Column("statement_date", Text, primary_key=True),
      Column("run_at_ms", Int, nullable=False),
      Column("matched", Int, nullable=False),
      Column("mismatches", Int, nullable=False))
Table("reconciliation_items", metadata, _id(),
      Column("first_date", Text, nullable=False),
      Column("last_date", Text, nullable=False),
      Column("out_trade_no", Text, nullable=False),
      Column("kind", Text, nullable=False),
      Column("detail", Text, nullable=False),
      Column("resolved_on", Text),
      UniqueConstraint("out_trade_no", "kind"),
      sqlite_autoincrement=True)
Table("alerts", metadata, _id(),
      Column("kind", Text, nullable=False),
      Column("payment_id", Text, nullable=False),
      Column("detail", Text, nullable=False),
      Column("seen", Int, nullable=False, server_default=text("1")),
      Column("first_at_ms", Int, nullable=False),
      Column("last_at_ms", Int, nullable=False),
      UniqueConstraint("kind", "payment_id"),
      sqlite_autoincrement=True)
# Rate-limit and login-failure counters shared by every gateway on PostgreSQL (on SQLite
# they live in a file of their own beside the database: see limit_store).
Table("rate_counters", metadata,
      Column("key", Text, primary_key=True),
      Column("count", Int, nullable=False),
      Column("expires_at", Float, nullable=False))
# Every gateway instance that ever ran on this database: its broker user (the Mosquitto
# files list them all, since a stopped instance's session still holds its share of the
# sales) and a check value of its master key (all instances must share one).
Table("gateway_instances", metadata,
      Column("name", Text, primary_key=True),
      Column("mqtt_username", Text, nullable=False),
      Column("mqtt_password_hash", Text, nullable=False),
      Column("key_check", Text, nullable=False),
      Column("host", Text, nullable=False),
      Column("pid", Int, nullable=False),
      Column("started_at_ms", Int, nullable=False))


#: What ``CREATE TABLE`` cannot say through the metadata, run after it on PostgreSQL (the
#: migration that made the table does the same).
POSTGRES_AFTER_CREATE = ("ALTER TABLE rate_counters SET UNLOGGED",)


@cache
def create_statements(dialect_name: str) -> tuple[str, ...]:
    """``CREATE TABLE``/``CREATE INDEX`` for a fresh database of ``dialect_name``."""
    if dialect_name == "sqlite":
        from sqlalchemy.dialects import sqlite as module
    else:
        from sqlalchemy.dialects import postgresql as module  # type: ignore[no-redef]
    dialect = module.dialect()
    statements = []
    for table in metadata.sorted_tables:
        statements.append(str(CreateTable(table).compile(dialect=dialect)).strip())
        statements.extend(str(CreateIndex(index).compile(dialect=dialect)).strip()
                          for index in sorted(table.indexes, key=lambda i: i.name or ""))
    if dialect_name != "sqlite":
        statements.extend(POSTGRES_AFTER_CREATE)
    return tuple(statements)
