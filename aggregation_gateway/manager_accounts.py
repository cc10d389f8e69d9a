"""Manager accounts: hashed passwords in SQLite, checked for HTTP Basic and the web login.

scrypt is deliberately slow, so a successful check is remembered briefly (keyed by a hash
of the credentials and the stored hash) instead of re-deriving on every API call.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
import threading
import time
from pathlib import Path

from .database import Database, now_ms
from .key_files import write_secret_file
from .passwords import check_password, hash_password

__all__ = ["ensure_manager", "verify_manager", "initial_password"]

_CACHE_SECONDS = 60.0
_cache: dict[str, float] = {}
_cache_lock = threading.Lock()


def initial_password(data_dir: str | Path) -> str:
    """The password in ``<data_dir>/manager.password``, created (0600) when absent."""
    path = Path(data_dir) / "manager.password"
    if not path.exists():
        with contextlib.suppress(FileExistsError):
            write_secret_file(path, secrets.token_urlsafe(18).encode())
    return path.read_text().strip()


def ensure_manager(db: Database, username: str, password: str) -> None:
    """Create the account, or change its password when it no longer matches."""
    row = db.conn.execute("SELECT password_hash FROM managers WHERE username = ?",
                          (username,)).fetchone()
    if row is not None and check_password(password, row["password_hash"]):
        return
    db.conn.execute("INSERT INTO managers (username, password_hash, created_at_ms) "
                    "VALUES (?, ?, ?) ON CONFLICT (username) DO UPDATE SET "
                    "password_hash = excluded.password_hash",
                    (username, hash_password(password), now_ms()))


def verify_manager(db: Database, username: str, password: str) -> bool:
    row = db.conn.execute("SELECT password_hash FROM managers WHERE username = ?",
                          (username,)).fetchone()
    if row is None:
        return False
    stored = row["password_hash"]
    cache_key = hashlib.sha256(f"{username}\x00{password}\x00{stored}".encode()).hexdigest()
    now = time.monotonic()
    with _cache_lock:
        if _cache.get(cache_key, 0) > now:
            return True
    if not check_password(password, stored):
        return False
    with _cache_lock:
        if len(_cache) > 1000:
            _cache.clear()
        _cache[cache_key] = now + _CACHE_SECONDS
    return True
