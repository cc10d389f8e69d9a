"""``limits`` storages in the gateway's own databases: a SQLite file, or PostgreSQL.

Every granian worker process (and every thread in it) counts in the same store, so a
limit holds for the whole gateway, not per worker; on PostgreSQL every gateway counts in
the ``rate_counters`` table of the database they share, so login throttling and rate
limits hold across instances too. The SQL (``INSERT ... ON CONFLICT ... RETURNING``) is
the same on both.

On SQLite counters are not money: the file runs with ``synchronous=OFF`` (a power cut
may forget a minute of counts) and is apart from the payments database so counting never
waits behind a payment's write lock.

Registered with ``limits`` under the schemes ``tracepay+sqlite:///<path>`` and
``tracepay+postgresql://<user>@<host>/<database>``.
"""

from __future__ import annotations

import random
import sqlite3
import threading
import time
from typing import Any

import psycopg
from limits.storage import Storage
from psycopg_pool import ConnectionPool

__all__ = ["SQLiteLimitStorage", "PostgresLimitStorage"]

_SCHEMA = ("CREATE TABLE IF NOT EXISTS rate_counters (key TEXT PRIMARY KEY, "
           "count INTEGER NOT NULL, expires_at REAL NOT NULL)")

_INCR = ("INSERT INTO rate_counters (key, count, expires_at) VALUES (%s, %s, %s) "
         "ON CONFLICT (key) DO UPDATE SET "
         "count = CASE WHEN rate_counters.expires_at <= %s THEN excluded.count "
         "ELSE rate_counters.count + excluded.count END, "
         "expires_at = CASE WHEN rate_counters.expires_at <= %s THEN excluded.expires_at "
         "ELSE rate_counters.expires_at END RETURNING count")
_SWEEP = "DELETE FROM rate_counters WHERE expires_at <= %s"
_GET = "SELECT count FROM rate_counters WHERE key = %s AND expires_at > %s"
_EXPIRY = "SELECT expires_at FROM rate_counters WHERE key = %s"
_RESET = "DELETE FROM rate_counters"
_CLEAR = "DELETE FROM rate_counters WHERE key = %s"


class _CounterStorage(Storage):
    """Fixed-window counters (what the fixed-window strategy needs) over ``_run``."""

    _marker = "%s"

    def _run(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        raise NotImplementedError

    def _sql(self, sql: str) -> str:
        return sql if self._marker == "%s" else sql.replace("%s", self._marker)

    def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        now = time.time()
        if random.random() < 0.001:  # expired windows are swept now and then
            self._run(self._sql(_SWEEP), (now,))
        return int(self._run(self._sql(_INCR), (key, amount, now + expiry, now, now))
                   .fetchone()[0])

    def get(self, key: str) -> int:
        row = self._run(self._sql(_GET), (key, time.time())).fetchone()
        return int(row[0]) if row else 0

    def get_expiry(self, key: str) -> float:
        row = self._run(self._sql(_EXPIRY), (key,)).fetchone()
        return row[0] if row and row[0] > time.time() else time.time()

    def check(self) -> bool:
        try:
            self._run("SELECT 1")
        except self.base_exceptions:
            return False
        return True

    def reset(self) -> int | None:
        return self._run(_RESET).rowcount

    def clear(self, key: str) -> None:
        self._run(self._sql(_CLEAR), (key,))


class SQLiteLimitStorage(_CounterStorage):
    STORAGE_SCHEME = ["tracepay+sqlite"]
    _marker = "?"

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

    def _run(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        return self._conn().execute(sql, params)


class _Fetched:
    def __init__(self, cursor: psycopg.Cursor[Any]) -> None:
        self.rows = cursor.fetchall() if cursor.description is not None else []
        self.rowcount = cursor.rowcount

    def fetchone(self) -> Any:
        return self.rows[0] if self.rows else None


class PostgresLimitStorage(_CounterStorage):
    """Counters in the gateways' shared PostgreSQL (table ``rate_counters``, created by
    the gateway's migrations), through a small pool of its own."""

    STORAGE_SCHEME = ["tracepay+postgresql"]

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False,
                 **options: Any) -> None:
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        if not uri or not uri.startswith("tracepay+postgresql://"):
            raise ValueError("use tracepay+postgresql://<user>@<host>/<database>")
        self.url = uri[len("tracepay+"):]
        self._pool: ConnectionPool | None = None
        self._lock = threading.Lock()

    @property
    def base_exceptions(self) -> type[Exception]:
        return psycopg.Error

    def _run(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        if self._pool is None:
            with self._lock:
                if self._pool is None:  # opened on first use: never across a fork
                    # A count need not wait for a disk flush (the table is UNLOGGED).
                    self._pool = ConnectionPool(
                        self.url, min_size=1, max_size=4, open=True, name="tracepay-limits",
                        kwargs={"autocommit": True,
                                "options": "-c synchronous_commit=off"})
        with self._pool.connection() as conn:
            return _Fetched(conn.execute(sql, params))

    def close(self) -> None:
        """Close the pool (an app that is shut down; opened again if used again)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()
