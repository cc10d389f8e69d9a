"""The gateway's SQLite database: schema, and one connection per thread.

HTTP workers (possibly several processes) and the background link share state only
through this file, so it runs in WAL mode with a busy timeout, and every state change is
a guarded statement that is safe when two processes race.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from contextlib import nullcontext
from pathlib import Path

from service_base.sqlite_writes import WriteLock, connect

__all__ = ["Database", "SCHEMA", "transaction", "now_ms"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS managers (
    username TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS merchants (
    merchant_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    org TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS devices (
    device_id TEXT PRIMARY KEY,
    merchant_id TEXT NOT NULL REFERENCES merchants(merchant_id),
    key_version INTEGER NOT NULL,
    status TEXT NOT NULL,               -- pending_claim | active | revoked
    enrolled_at_ms INTEGER NOT NULL,
    claimed_at_ms INTEGER,
    revoked_at_ms INTEGER
);
CREATE TABLE IF NOT EXISTS enrolment_codes (
    code_hash TEXT PRIMARY KEY,
    device_id TEXT NOT NULL REFERENCES devices(device_id),
    key_version INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL,
    used_at_ms INTEGER
);
CREATE TABLE IF NOT EXISTS payments (
    payment_id TEXT PRIMARY KEY,
    device_id TEXT NOT NULL,
    merchant_id TEXT NOT NULL,
    order_no INTEGER NOT NULL,
    nonce TEXT NOT NULL,
    amount_fen INTEGER NOT NULL,
    currency TEXT NOT NULL,
    qr_issued_at INTEGER NOT NULL,
    status TEXT NOT NULL,
    channel TEXT NOT NULL,
    channel_order_id TEXT,
    checkout_url TEXT,
    channel_txn_id TEXT,
    payer_id TEXT,
    paid_at_ms INTEGER,
    refunded_fen INTEGER NOT NULL DEFAULT 0,
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL,
    last_query_at_ms INTEGER,
    UNIQUE (device_id, order_no)
);
CREATE INDEX IF NOT EXISTS payments_status ON payments(status, created_at_ms);
CREATE INDEX IF NOT EXISTS payments_merchant ON payments(merchant_id, paid_at_ms);
CREATE TABLE IF NOT EXISTS payment_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    payment_id TEXT NOT NULL,
    from_status TEXT NOT NULL,
    to_status TEXT NOT NULL,
    source TEXT NOT NULL,
    accepted INTEGER NOT NULL,
    reason TEXT,
    at_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS payment_events_payment ON payment_events(payment_id);
CREATE TABLE IF NOT EXISTS notifications (
    channel TEXT NOT NULL,
    notify_id TEXT NOT NULL,
    payment_id TEXT NOT NULL,
    status TEXT NOT NULL,
    received_at_ms INTEGER NOT NULL,
    PRIMARY KEY (channel, notify_id)
);
CREATE TABLE IF NOT EXISTS refunds (
    refund_id TEXT PRIMARY KEY,
    merchant_id TEXT NOT NULL,
    refund_no TEXT NOT NULL,
    payment_id TEXT NOT NULL,
    amount_fen INTEGER NOT NULL,
    reason TEXT NOT NULL,
    status TEXT NOT NULL,               -- processing | success | failed
    channel_refund_id TEXT,
    requested_by TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    UNIQUE (merchant_id, refund_no)
);
CREATE TABLE IF NOT EXISTS sales (
    device_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    sale_id TEXT NOT NULL,
    record TEXT NOT NULL,
    received_at_ms INTEGER NOT NULL,
    voided_at_ms INTEGER,               -- set when the terminal re-sent it as "void"
    void_record TEXT,                   -- that MACed void record, kept as evidence
    PRIMARY KEY (device_id, seq, sale_id)
);
CREATE INDEX IF NOT EXISTS sales_sale_id ON sales(sale_id);
CREATE TABLE IF NOT EXISTS rejected_messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    reason TEXT NOT NULL,
    at_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,                 -- payment_result | trade
    record_id TEXT NOT NULL,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    created_at_ms INTEGER NOT NULL,
    published_at_ms INTEGER,
    UNIQUE (kind, record_id)
);
CREATE INDEX IF NOT EXISTS outbox_unpublished ON outbox(published_at_ms, id);
CREATE TABLE IF NOT EXISTS channel_calls (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    channel TEXT NOT NULL,
    method TEXT NOT NULL,
    url TEXT NOT NULL,
    request TEXT NOT NULL,
    status INTEGER,
    response TEXT,
    error TEXT,
    at_ms INTEGER NOT NULL,
    elapsed_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS link_status (
    name TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    at_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS web_sessions (
    session_hash TEXT PRIMARY KEY,
    username TEXT NOT NULL,
    csrf_token TEXT NOT NULL,
    expires_at_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS statement_items (
    statement_date TEXT NOT NULL,
    out_trade_no TEXT NOT NULL,
    kind TEXT NOT NULL,
    amount_fen INTEGER NOT NULL,
    fee_fen INTEGER NOT NULL,
    status TEXT NOT NULL,
    PRIMARY KEY (statement_date, out_trade_no, kind)
);
CREATE TABLE IF NOT EXISTS reconciliation_runs (
    statement_date TEXT PRIMARY KEY,
    run_at_ms INTEGER NOT NULL,
    matched INTEGER NOT NULL,
    mismatches INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS reconciliation_items (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    first_date TEXT NOT NULL,
    last_date TEXT NOT NULL,
    out_trade_no TEXT NOT NULL,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL,
    resolved_on TEXT,
    UNIQUE (out_trade_no, kind)
);
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    payment_id TEXT NOT NULL,
    detail TEXT NOT NULL,
    seen INTEGER NOT NULL DEFAULT 1,
    first_at_ms INTEGER NOT NULL,
    last_at_ms INTEGER NOT NULL,
    UNIQUE (kind, payment_id)
);
"""


class Database:
    """Opens ``gateway.sqlite3`` under ``data_dir``; ``conn`` is this thread's connection."""

    def __init__(self, data_dir: str | Path) -> None:
        self.path = Path(data_dir) / "gateway.sqlite3"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.write_lock = WriteLock(self.path)
        self._local = threading.local()
        with self._connect() as conn:
            conn.executescript(SCHEMA)
            _add_missing_columns(conn)

    def _connect(self) -> sqlite3.Connection:
        conn = connect(self.path, self.write_lock, timeout=30, isolation_level=None,
                       check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=30000")
        conn.execute("PRAGMA foreign_keys=ON")
        return conn

    @property
    def conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        return conn

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


#: Columns added after the first release: (table, column, declaration). A database made
#: before them gains them on open, so an upgrade keeps its data.
_ADDED_COLUMNS = (("sales", "voided_at_ms", "INTEGER"), ("sales", "void_record", "TEXT"),
                  ("devices", "rotated_at_ms", "INTEGER"))


def _add_missing_columns(conn: sqlite3.Connection) -> None:
    for table, column, declaration in _ADDED_COLUMNS:
        present = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        if column not in present:
            try:
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
            except sqlite3.OperationalError as exc:  # another worker added it first
                if "duplicate column" not in str(exc):
                    raise


class transaction:  # noqa: N801 - used like a keyword: ``with transaction(conn):``
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on error): one writer at a time.

    A connection from :class:`Database` carries the file's write lock, taken first: the
    gateway's worker processes then queue for writes instead of polling SQLite's lock.
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        lock = getattr(conn, "write_lock", None)
        self._held = lock.held() if lock is not None else nullcontext()

    def __enter__(self) -> sqlite3.Connection:
        self._held.__enter__()
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except BaseException:
            self._held.__exit__(None, None, None)
            raise
        return self.conn

    def __exit__(self, exc_type: object, *_: object) -> None:
        try:
            self.conn.execute("ROLLBACK" if exc_type else "COMMIT")
        finally:
            self._held.__exit__(None, None, None)


def now_ms() -> int:
    return int(time.time() * 1000)
