"""Server-side manager sessions with a CSRF token each.

The browser holds only a random session id (HttpOnly, SameSite=Strict cookie); the
database holds its SHA-256, the user and the session's CSRF token, so a stolen database
copy cannot be replayed as a cookie and logging out really ends the session.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

from .database import Database, now_ms

__all__ = ["create_session", "load_session", "end_session", "csrf_ok", "COOKIE"]

COOKIE = "tracepay_manager"


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def create_session(db: Database, username: str, lifetime_s: int) -> tuple[str, str]:
    """A new (session id, csrf token)."""
    session_id = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(24)
    now = now_ms()
    db.conn.execute("DELETE FROM web_sessions WHERE expires_at_ms < ?", (now,))
    db.conn.execute("INSERT INTO web_sessions VALUES (?, ?, ?, ?)",
                    (_hash(session_id), username, csrf, now + lifetime_s * 1000))
    return session_id, csrf


def load_session(db: Database, session_id: str | None) -> dict[str, Any] | None:
    if not session_id or len(session_id) > 100:
        return None
    row = db.conn.execute("SELECT username, csrf_token, expires_at_ms FROM web_sessions "
                          "WHERE session_hash = ?", (_hash(session_id),)).fetchone()
    if row is None or row["expires_at_ms"] < now_ms():
        return None
    return dict(row)


def end_session(db: Database, session_id: str | None) -> None:
    if session_id:
        db.conn.execute("DELETE FROM web_sessions WHERE session_hash = ?", (_hash(session_id),))


def csrf_ok(session: dict[str, Any], submitted: str | None) -> bool:
    return bool(submitted) and hmac.compare_digest(session["csrf_token"], submitted or "")
