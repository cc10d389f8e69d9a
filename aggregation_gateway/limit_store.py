"""A ``limits`` storage in a SQLite file beside the gateway's database.

Every granian worker process (and every thread in it) counts in the same file, so a limit
holds for the whole gateway, not per worker. Counters are not money: the file runs with
``synchronous=OFF`` (a power cut may forget a minute of counts) and is apart from the
payments database so counting never waits behind a payment's write lock. The SQL
(``INSERT ... ON CONFLICT ... RETURNING``) is the same in PostgreSQL, so a storage on the
gateways' shared PostgreSQL can follow with another connection factory.

Registered with ``limits`` under the scheme ``tracepay+sqlite:///<path>``.
"""

from __future__ import annotations

import random
import sqlite3
import threading
import time
from typing import Any

from limits.storage import Storage

__all__ = ["SQLiteLimitStorage"]

_SCHEMA = ("CREATE TABLE IF NOT EXISTS rate_counters (key TEXT PRIMARY KEY, "
           "count INTEGER NOT NULL, expires_at REAL NOT NULL)")

_INCR = ("INSERT INTO rate_counters (key, count, expires_at) VALUES (?, ?, ?) "
         "ON CONFLICT (key) DO UPDATE SET "
         "count = CASE WHEN rate_counters.expires_at <= ? THEN excluded.count "
         "ELSE rate_counters.count + excluded.count END, "
         "expires_at = CASE WHEN rate_counters.expires_at <= ? THEN excluded.expires_at "
         "ELSE rate_counters.expires_at END RETURNING count")


class SQLiteLimitStorage(Storage):
    """Fixed-window counters (what the fixed-window strategy needs)."""

    STORAGE_SCHEME = ["tracepay+sqlite"]

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False,
                 **options: Any) -> None:
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        if not uri or not uri.startswith("tracepay+sqlite:///"):
            raise ValueError("use tracepay+sqlite:///<path to a file>")
        self.path = uri[len("tracepay+sqlite://"):]
        self._local = threading.local()
        self._conn().execute(_SCHEMA)

    @property
    def base_exceptions(self) -> type[Exception]:
        return sqlite3.Error

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=10)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=OFF")
            self._local.conn = conn
        return conn

    def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        now = time.time()
        conn = self._conn()
        if random.random() < 0.001:  # expired windows are swept now and then
            conn.execute("DELETE FROM rate_counters WHERE expires_at <= ?", (now,))
        return conn.execute(_INCR, (key, amount, now + expiry, now, now)).fetchone()[0]

    def get(self, key: str) -> int:
        row = self._conn().execute("SELECT count FROM rate_counters WHERE key = ? AND "
                                   "expires_at > ?", (key, time.time())).fetchone()
        return row[0] if row else 0

    def get_expiry(self, key: str) -> float:
        row = self._conn().execute("SELECT expires_at FROM rate_counters WHERE key = ?",
                                   (key,)).fetchone()
        return row[0] if row and row[0] > time.time() else time.time()

    def check(self) -> bool:
        try:
            self._conn().execute("SELECT 1")
        except sqlite3.Error:
            return False
        return True

    def reset(self) -> int | None:
        return self._conn().execute("DELETE FROM rate_counters").rowcount

    def clear(self, key: str) -> None:
        self._conn().execute("DELETE FROM rate_counters WHERE key = ?", (key,))
