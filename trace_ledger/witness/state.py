"""The witness's durable record: per origin, the last checkpoint it cosigned.

Checking a request's old size against this record and replacing it must be one atomic
step, or two racing requests could roll the record back (tlog-witness names this race):
:meth:`WitnessState.advance` runs the caller's check inside one ``BEGIN IMMEDIATE``
transaction, under a lock for the process's threads, and commits before the cosignature
is returned. Refused requests whose signatures verified are kept too, as evidence of a
log that forked or rolled back.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from service_base.sqlite_schema import migrate

__all__ = ["WitnessState", "Latest", "STATE_NAME"]

STATE_NAME = "witness.sqlite"

STEPS = ["""
CREATE TABLE IF NOT EXISTS witness_latest (
    origin TEXT PRIMARY KEY, size INTEGER NOT NULL, root BLOB NOT NULL, note TEXT NOT NULL,
    cosigned_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS witness_refused (
    at_ms INTEGER NOT NULL, origin TEXT NOT NULL, status INTEGER NOT NULL,
    reason TEXT NOT NULL, request TEXT NOT NULL);
"""]


@dataclass(frozen=True, slots=True)
class Latest:
    origin: str
    size: int
    root: bytes
    note: str
    cosigned_at: int


class WitnessState:
    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        migrate(self._db, STEPS, name=str(path))
        self._lock = threading.Lock()

    def close(self) -> None:
        self._db.close()

    def _latest(self, origin: str) -> Latest | None:
        row = self._db.execute("SELECT origin, size, root, note, cosigned_at FROM "
                               "witness_latest WHERE origin = ?", (origin,)).fetchone()
        return Latest(*row) if row else None

    def latest(self, origin: str) -> Latest | None:
        with self._lock:
            return self._latest(origin)

    def advance(self, origin: str,
                decide: Callable[[Latest | None], Latest]) -> Latest:
        """Run ``decide(current)`` and store what it returns, atomically. ``decide`` raises
        to refuse (nothing is stored)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                new = decide(self._latest(origin))
                self._db.execute(
                    "INSERT INTO witness_latest VALUES (?, ?, ?, ?, ?) ON CONFLICT(origin) DO "
                    "UPDATE SET size = excluded.size, root = excluded.root, "
                    "note = excluded.note, cosigned_at = excluded.cosigned_at",
                    (new.origin, new.size, new.root, new.note, new.cosigned_at))
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            return new

    def refused(self, origin: str, status: int, reason: str, request: str) -> None:
        with self._lock:
            self._db.execute("INSERT INTO witness_refused VALUES (?, ?, ?, ?, ?)",
                             (int(time.time() * 1000), origin, status, reason, request))

    def refusals(self, limit: int = 100) -> list[dict[str, object]]:
        with self._lock:
            rows = self._db.execute("SELECT at_ms, origin, status, reason FROM witness_refused "
                                    "ORDER BY rowid DESC LIMIT ?", (limit,)).fetchall()
        return [{"at_ms": r[0], "origin": r[1], "status": r[2], "reason": r[3]} for r in rows]
