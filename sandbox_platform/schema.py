"""The sandbox platform's tables: apps, orders, refunds, notification deliveries, nonces.

Versioned with :mod:`service_base.sqlite_schema`: step 1 is the original schema, so files
made before versions existed adopt it unchanged.
"""

from __future__ import annotations

__all__ = ["SCHEMA", "PAYER_CODES", "MIGRATIONS"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS apps (
    app_id TEXT PRIMARY KEY,
    public_key_pem TEXT NOT NULL,
    merchant_name TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS orders (
    order_id TEXT PRIMARY KEY,
    app_id TEXT NOT NULL,
    out_trade_no TEXT NOT NULL,
    amount_fen INTEGER NOT NULL,
    currency TEXT NOT NULL,
    subject TEXT NOT NULL,
    notify_url TEXT NOT NULL,
    return_url TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL,
    payer_id TEXT,
    paid_at_ms INTEGER,
    channel_txn_id TEXT,
    fee_fen INTEGER,
    closed_at_ms INTEGER,
    refunded_fen INTEGER NOT NULL DEFAULT 0,
    UNIQUE (app_id, out_trade_no)
);
CREATE INDEX IF NOT EXISTS orders_paid_at ON orders (app_id, paid_at_ms);
CREATE TABLE IF NOT EXISTS refunds (
    refund_id TEXT PRIMARY KEY,
    app_id TEXT NOT NULL,
    out_refund_no TEXT NOT NULL,
    out_trade_no TEXT NOT NULL,
    order_id TEXT NOT NULL,
    amount_fen INTEGER NOT NULL,
    fee_fen INTEGER NOT NULL,
    reason TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    UNIQUE (app_id, out_refund_no)
);
CREATE INDEX IF NOT EXISTS refunds_created_at ON refunds (app_id, created_at_ms);
CREATE TABLE IF NOT EXISTS notifications (
    notify_id TEXT PRIMARY KEY,
    app_id TEXT NOT NULL,
    order_id TEXT NOT NULL,
    out_trade_no TEXT NOT NULL,
    notify_url TEXT NOT NULL,
    body BLOB NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at_ms INTEGER,
    created_at_ms INTEGER NOT NULL,
    delivered_at_ms INTEGER
);
CREATE INDEX IF NOT EXISTS notifications_due ON notifications (status, next_attempt_at_ms);
CREATE INDEX IF NOT EXISTS notifications_trade ON notifications (out_trade_no);
CREATE TABLE IF NOT EXISTS request_nonces (
    app_id TEXT NOT NULL,
    nonce TEXT NOT NULL,
    seen_at_ms INTEGER NOT NULL,
    PRIMARY KEY (app_id, nonce)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS request_nonces_seen ON request_nonces (seen_at_ms);
CREATE TABLE IF NOT EXISTS attempts (
    notify_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    at_ms INTEGER NOT NULL,
    http_status INTEGER,
    response_excerpt TEXT,
    error TEXT,
    PRIMARY KEY (notify_id, attempt)
);
"""

#: Pay-by-code (付款码): the codes a shopper's wallet shows, and the order each one paid.
PAYER_CODES = """
CREATE TABLE payer_codes (
    auth_code TEXT PRIMARY KEY,
    payer_id TEXT NOT NULL,
    behaviour TEXT NOT NULL CHECK (behaviour IN ('pay', 'password', 'decline', 'insufficient')),
    issued_at_ms INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL,
    order_id TEXT UNIQUE,
    state TEXT NOT NULL DEFAULT 'issued'
        CHECK (state IN ('issued', 'waiting', 'paid', 'declined', 'cancelled', 'reversed'))
);
ALTER TABLE orders ADD COLUMN auth_code TEXT;
ALTER TABLE orders ADD COLUMN fail_reason TEXT;
ALTER TABLE orders ADD COLUMN reversed_at_ms INTEGER;
"""

#: Append steps, never edit a shipped one.
MIGRATIONS = (SCHEMA, PAYER_CODES)
