"""Versioned schemas for the SQLite-only stores: numbered migrations, applied once each.

A store declares its schema as an ordered list of steps; step ``n`` (1-based) brings a
database from version ``n - 1`` to ``n``. The version lives in SQLite's own
``PRAGMA user_version`` header field, which is written inside the same transaction as the
step, so a crash mid-upgrade leaves the old version and the old tables, never half of a
step. A database newer than the code is refused (opening it would silently misread columns
the code does not know); a release never edits a shipped step, it appends one.

Step 1 of every store is its original ``CREATE TABLE IF NOT EXISTS`` script, so files made
before versions existed (``user_version`` 0, tables present) adopt it as a no-op. A step may
be SQL text or a function of the connection, for changes SQL cannot make conditionally
(adding a column that some old files already have).

sqlite-utils' table helpers were considered: its migrations live in a separate plugin
package with its own bookkeeping table, and the stores here need only ordered steps and a
version check, which SQLite's header field gives without another table or dependency.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence

__all__ = ["Step", "SchemaTooNew", "migrate", "schema_version", "add_column_if_missing"]

#: One migration step: an SQL script, or a function run on the connection.
Step = str | Callable[[sqlite3.Connection], None]


class SchemaTooNew(RuntimeError):
    """The file was written by a newer release than this code knows."""


def schema_version(db: sqlite3.Connection) -> int:
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def migrate(db: sqlite3.Connection, steps: Sequence[Step], *, name: str = "database") -> int:
    """Apply the steps ``db`` has not had yet, each in its own transaction; return the
    version reached (``len(steps)``). ``db`` must be in autocommit mode
    (``isolation_level=None``) so that the transactions here are the only ones."""
    if db.isolation_level is not None:
        raise ValueError("migrate needs a connection opened with isolation_level=None")
    current = schema_version(db)
    if current > len(steps):
        raise SchemaTooNew(f"{name} has schema version {current}; this release knows "
                           f"versions up to {len(steps)}: upgrade tracepay before opening it")
    for version in range(current + 1, len(steps) + 1):
        step = steps[version - 1]
        db.execute("BEGIN IMMEDIATE")
        try:
            if schema_version(db) >= version:  # another process upgraded it meanwhile
                db.execute("ROLLBACK")
                continue
            if callable(step):
                step(db)
            else:
                for statement in _statements(step):
                    db.execute(statement)
            db.execute(f"PRAGMA user_version = {version:d}")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
    return len(steps)


def add_column_if_missing(table: str, column: str, declaration: str) -> Step:
    """A step adding ``column`` to ``table`` unless an older release's file already has it."""
    def step(db: sqlite3.Connection) -> None:
        columns = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        if column not in columns:
            db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
    return step


def _statements(script: str) -> list[str]:
    """Split a script into whole statements (``executescript`` would commit on its own)."""
    statements, pending = [], ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    if pending.strip():
        raise ValueError(f"incomplete SQL statement in migration: {pending.strip()[:80]!r}")
    return [s for s in statements if s.rstrip(";").strip()]
