"""Where channel-call snapshots go: straight into SQLite, or, inside ``deferred()``, into
the transaction of the change the call was made for (one write instead of two on the
scan landing's hot path)."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from typing import Any

from .database import Database

__all__ = ["AuditLog"]

_INSERT = ("INSERT INTO channel_calls (channel, method, url, request, status, response, "
           "error, at_ms, elapsed_ms) VALUES (:channel, :method, :url, :request, :status, "
           ":response, :error, :at_ms, :elapsed_ms)")


class AuditLog:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._local = threading.local()

    def __call__(self, snapshot: dict[str, Any]) -> None:
        buffer = getattr(self._local, "buffer", None)
        if buffer is not None:
            buffer.append(snapshot)
        else:
            self.db.conn.execute(_INSERT, snapshot)

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        """Hold snapshots until ``flush``; whatever is left is written on the way out."""
        self._local.buffer = []
        try:
            yield
        finally:
            left, self._local.buffer = self._local.buffer, None
            if left:
                self.db.conn.executemany(_INSERT, left)

    def flush(self, conn: sqlite3.Connection) -> None:
        """Write held snapshots with ``conn`` (inside the caller's transaction)."""
        buffer = getattr(self._local, "buffer", None)
        if buffer:
            conn.executemany(_INSERT, buffer)
            buffer.clear()
