"""Creating and upgrading the gateway's database: Alembic revisions, for both backends.

Every open checks the stamped revision (one query, Alembic not loaded): at
``HEAD_REVISION`` nothing happens. An empty database is created from ``schema.metadata``
and stamped; any other (an older revision, or a file made before revisions existed, which
the baseline revision adopts) is upgraded by Alembic. Both run under a lock (the SQLite
file's write lock, a PostgreSQL advisory lock), so several workers or gateways starting
together upgrade once. ``tracepay gateway migrate`` runs the same thing on purpose.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from .pg_connection import PgConnection, translate
from .schema import HEAD_REVISION, create_statements


class Database(Protocol):
    """What migrating needs of ``database.Database`` (which calls this module on open,
    so this module does not import it)."""

    dialect: str
    url: str
    path: Path | None
    write_lock: Any

    @property
    def conn(self) -> Any: ...

    @property
    def pool(self) -> Any: ...

    def _connect(self) -> Any: ...

__all__ = ["ensure_current", "current_revision", "upgrade", "sqlalchemy_url"]

log = logging.getLogger(__name__)

#: The PostgreSQL advisory lock key held while one process migrates.
_MIGRATION_LOCK = 73_0016
_VERSION_TABLE = ("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, "
                  "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))")


def _execute(db: Database, conn: Any, sql: str, params: Any = ()) -> Any:
    """``conn`` is the gateway's connection or (under the lock) a raw psycopg one."""
    if db.dialect == "postgresql" and not isinstance(conn, PgConnection):
        sql = translate(sql)
    return conn.execute(sql, params)


def _has_table(db: Database, conn: Any, name: str) -> bool:
    if db.dialect == "sqlite":
        sql = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
    else:
        sql = "SELECT 1 FROM pg_tables WHERE schemaname = current_schema() AND tablename = ?"
    return _execute(db, conn, sql, (name,)).fetchone() is not None


def current_revision(db: Database, conn: Any = None) -> str | None:
    """The stamped revision; None for an empty or pre-revision database."""
    conn = conn or db.conn
    if not _has_table(db, conn, "alembic_version"):
        return None
    row = _execute(db, conn, "SELECT version_num FROM alembic_version").fetchone()
    return row[0] if row else None


@contextlib.contextmanager
def _migration_lock(db: Database) -> Iterator[Any]:
    """A connection of its own, holding the lock every migrating process takes."""
    if db.dialect == "sqlite":
        conn = db._connect()
        try:
            with db.write_lock.held():
                yield conn
        finally:
            conn.close()
        return
    with db.pool.connection() as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_MIGRATION_LOCK,))
        try:
            yield conn
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_MIGRATION_LOCK,))


def ensure_current(db: Database) -> str:
    """Bring the database to ``HEAD_REVISION``; returns what was done."""
    if current_revision(db) == HEAD_REVISION:
        return "current"
    with _migration_lock(db) as conn:
        found = current_revision(db, conn)
        if found == HEAD_REVISION:
            return "current"
        if found is None and not _has_table(db, conn, "payments"):
            _create_fresh(db, conn)
            return "created"
        upgrade(db)
        return "upgraded"


def _create_fresh(db: Database, conn: Any) -> None:
    statements = (*create_statements(db.dialect), _VERSION_TABLE)
    if db.dialect == "sqlite":
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in statements:
                conn.execute(statement)
            conn.execute("INSERT INTO alembic_version VALUES (?)", (HEAD_REVISION,))
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return
    with conn.transaction():
        for statement in statements:
            conn.execute(statement)
        conn.execute("INSERT INTO alembic_version VALUES (%s)", (HEAD_REVISION,))


def sqlalchemy_url(db: Database) -> str:
    if db.dialect == "sqlite":
        return f"sqlite:///{db.path}"
    scheme, rest = db.url.split("://", 1)
    return f"postgresql+psycopg://{rest}"


def alembic_config() -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", "aggregation_gateway:migrations")
    return config


def upgrade(db: Database, revision: str = "head") -> None:
    """Run Alembic's upgrade to ``revision`` on ``db`` (the caller holds the lock, or
    nothing else uses the database)."""
    from alembic import command
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    engine = create_engine(sqlalchemy_url(db), poolclass=NullPool)
    try:
        with engine.begin() as connection:
            config = alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    finally:
        engine.dispose()
    log.info("gateway database upgraded to %s", revision)
