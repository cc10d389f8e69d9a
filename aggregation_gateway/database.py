"""The gateway's database: SQLite (the embedded default) or PostgreSQL, one API for both.

HTTP workers (possibly several processes, and on PostgreSQL several gateways) and the
background link share state only through the database, and every state change is a
guarded statement that is safe when two processes race.

* SQLite: ``gateway.sqlite3`` in the data directory, WAL mode with a busy timeout, one
  connection per thread; writers queue on the file's :class:`WriteLock`, so a write
  transaction (``BEGIN IMMEDIATE``) sees no other writer between its reads and writes.
* PostgreSQL (``database_url = postgresql://...``): a psycopg pool (``pg_connection``).
  There writers do run side by side, so what SQLite's one-writer-at-a-time gave for free
  is asked for where it matters: ``for_update`` on rows a transaction reads and then
  changes, ``claim`` (``FOR UPDATE SKIP LOCKED``) for the sweepers' jobs, ``serialise``
  for the rare manager action that rewrites a set of rows.

The tables are ``schema.metadata``; ``migrate`` creates or upgrades them on open.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import psycopg

from service_base.sqlite_writes import WriteLock, connect

from .pg_connection import PgConnection, open_pool

__all__ = ["Database", "DatabaseError", "transaction", "now_ms", "is_postgres_url", "Record"]

#: A row as the gateway's code reads it: by column name (``sqlite3.Row``, the PostgreSQL
#: ``pg_connection.Row`` that behaves like it, or a plain dict built from one).
Record = Mapping[str, Any] | sqlite3.Row

#: What a failed statement raises, on either backend.
DatabaseError = (sqlite3.Error, psycopg.Error)


def is_postgres_url(url: str | None) -> bool:
    return bool(url) and str(url).startswith(("postgresql://", "postgres://"))



class Database:
    """The gateway's state. ``conn`` is this thread's connection (``execute``,
    ``executemany``, and ``transaction(conn)`` around a group of writes).

    ``url`` empty: SQLite in ``data_dir``; ``postgresql://...``: that database, through a
    pool of at most ``pool_size`` connections. The schema is created or upgraded on open.
    """

    def __init__(self, data_dir: str | Path, url: str = "", pool_size: int = 10,
                 migrate: bool = True) -> None:
        self.url = url or ""
        self._local = threading.local()
        self.path: Path | None = None
        if is_postgres_url(self.url):
            self.dialect = "postgresql"
            self.for_update = " FOR UPDATE"
            self.pool_size = pool_size
            self._pool: Any = None
            self._pool_lock = threading.Lock()
        elif self.url:
            raise ValueError(f"database_url must be empty (SQLite in the data directory) or "
                             f"postgresql://...; got {self.url.split(':', 1)[0]}:...")
        else:
            self.dialect = "sqlite"
            self.for_update = ""  # BEGIN IMMEDIATE already holds the only write lock
            self.path = Path(data_dir) / "gateway.sqlite3"
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.write_lock = WriteLock(self.path)
        if migrate:
            from .migrate import ensure_current

            ensure_current(self)

    def _connect(self) -> sqlite3.Connection:
        assert self.path is not None
        conn = connect(self.path, self.write_lock, timeout=30, isolation_level=None,
                       check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=30000")
        conn.execute("PRAGMA foreign_keys=ON")
        return conn

    @property
    def pool(self) -> Any:
        """The PostgreSQL pool, opened on first use (so none crosses a worker's fork)."""
        if self._pool is None:
            with self._pool_lock:
                if self._pool is None:
                    self._pool = open_pool(self.url, self.pool_size)
        return self._pool

    @property
    def conn(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            if self.dialect == "postgresql":
                conn = self._local.conn = PgConnection(lambda: self.pool)
            else:
                conn = self._local.conn = self._connect()
        return conn

    def close(self) -> None:
        """SQLite: close this thread's connection; PostgreSQL: close the pool (opened
        again if used again)."""
        if self.dialect == "postgresql":
            with self._pool_lock:
                pool, self._pool = self._pool, None
            if pool is not None:
                pool.close()
            return
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    @contextmanager
    def claim(self, sql: str, params: Any = ()) -> Iterator[bool]:
        """Hold one sweeper job: yields whether ``sql`` (a ``SELECT`` naming the job's row
        and the condition that makes it due) found it free and still due.

        On PostgreSQL the row is locked (``FOR UPDATE SKIP LOCKED``) for the whole block,
        in one transaction, so another gateway's sweeper skips it instead of doing the
        same work; what the block writes commits with it (inner transactions are
        savepoints), also when the block ends in an application error. On SQLite one
        gateway owns the file and its sweeper is the only one: no lock is taken (holding
        the file's write lock across a platform call would stop every writer).
        """
        if self.dialect == "sqlite":
            yield True
            return
        conn = self.conn
        conn.begin()
        error: BaseException | None = None
        try:
            yield conn.execute(sql + " FOR UPDATE SKIP LOCKED", params).fetchone() is not None
        except psycopg.Error as exc:
            error = exc
            raise
        finally:
            conn.end(error)

    def serialise(self, conn: Any, name: str) -> None:
        """Inside a transaction: wait for any other transaction serialised on ``name``
        (a PostgreSQL advisory lock; SQLite's write transactions are serial anyway)."""
        if self.dialect == "postgresql":
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(?))", (name,))


class transaction:  # noqa: N801 - used like a keyword: ``with transaction(conn):``
    """``BEGIN`` ... ``COMMIT`` (``ROLLBACK`` on error).

    SQLite: ``BEGIN IMMEDIATE``, one writer at a time. A connection from :class:`Database`
    carries the file's write lock, taken first: the gateway's worker processes then queue
    for writes instead of polling SQLite's lock. PostgreSQL: a transaction on one pooled
    connection (a savepoint when nested).
    """

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self._pg = isinstance(conn, PgConnection)
        lock = getattr(conn, "write_lock", None)
        self._held = lock.held() if lock is not None else nullcontext()

    def __enter__(self) -> Any:
        if self._pg:
            self.conn.begin()
            return self.conn
        self._held.__enter__()
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except BaseException:
            self._held.__exit__(None, None, None)
            raise
        return self.conn

    def __exit__(self, exc_type: Any, exc: Any, _tb: object) -> None:
        if self._pg:
            self.conn.end(exc)
            return
        try:
            self.conn.execute("ROLLBACK" if exc_type else "COMMIT")
        finally:
            self._held.__exit__(None, None, None)


def now_ms() -> int:
    return int(time.time() * 1000)
