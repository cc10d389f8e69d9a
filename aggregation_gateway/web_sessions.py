"""Server-side manager sessions.

The browser holds only a random session id (HttpOnly, SameSite=Strict cookie); the
database holds its SHA-256 and the user, so a stolen database copy cannot be replayed as
a cookie and logging out really ends the session. Form tokens are Flask-WTF's (the
table's ``csrf_token`` column is no longer written: it stays for existing databases).
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from .database import Database, now_ms

__all__ = ["create_session", "load_session", "end_session", "COOKIE"]

COOKIE = "tracepay_manager"


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def create_session(db: Database, username: str, lifetime_s: int) -> str:
    """A new session id for ``username``."""
    session_id = secrets.token_urlsafe(32)
    now = now_ms()
    db.conn.execute("DELETE FROM web_sessions WHERE expires_at_ms < ?", (now,))
    db.conn.execute("INSERT INTO web_sessions VALUES (?, ?, '', ?)",
                    (_hash(session_id), username, now + lifetime_s * 1000))
    return session_id


def load_session(db: Database, session_id: str | None) -> dict[str, Any] | None:
    if not session_id or len(session_id) > 100:
        return None
    row = db.conn.execute("SELECT username, expires_at_ms FROM web_sessions "
                          "WHERE session_hash = ?", (_hash(session_id),)).fetchone()
    if row is None or row["expires_at_ms"] < now_ms():
        return None
    return dict(row)


def end_session(db: Database, session_id: str | None) -> None:
    if session_id:
        db.conn.execute("DELETE FROM web_sessions WHERE session_hash = ?", (_hash(session_id),))
