"""The SQLite outbox of MQTT messages: written in the same transaction as the change that
caused them, published by the link, marked published only on the broker's PUBACK.

So a crash between a payment and its publication loses nothing: unpublished rows are
published again when the link starts.

With several gateways on one PostgreSQL database each publisher takes its rows with a
lease (``FOR UPDATE SKIP LOCKED``, ``lease_until_ms``): two gateways publish different
rows, and rows whose gateway died are taken by another once the lease runs out.
"""

from __future__ import annotations

import sqlite3

from market_protocol import canonical_json

from .database import now_ms

__all__ = ["enqueue", "unpublished", "mark_published", "pending_count", "LEASE_MS"]

#: How long a publisher holds the rows it took (a PUBACK normally comes in milliseconds).
LEASE_MS = 15_000

_TAKE = ("UPDATE outbox SET lease_until_ms = ? WHERE id IN (SELECT id FROM outbox WHERE "
         "published_at_ms IS NULL AND id > ? AND COALESCE(lease_until_ms, 0) < ? ORDER BY id "
         "LIMIT ? FOR UPDATE SKIP LOCKED) RETURNING id, kind, record_id, topic, payload")


def enqueue(conn: sqlite3.Connection, kind: str, record_id: str, topic: str,
            record: dict) -> bool:
    """Add a message once per (kind, record_id); returns False when it was already there."""
    cursor = conn.execute(
        "INSERT INTO outbox (kind, record_id, topic, payload, created_at_ms) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING", (kind, record_id, topic, canonical_json.dumps(record),
                                   now_ms()))
    return cursor.rowcount == 1


def unpublished(conn: sqlite3.Connection, after_id: int = 0, limit: int = 200
                ) -> list[sqlite3.Row]:
    """Rows to publish, oldest first (on PostgreSQL: taken for ``LEASE_MS``)."""
    if getattr(conn, "dialect", "sqlite") == "postgresql":
        now = now_ms()
        rows = conn.execute(_TAKE, (now + LEASE_MS, after_id, now, limit)).fetchall()
        return sorted(rows, key=lambda row: row["id"])
    return conn.execute("SELECT id, kind, record_id, topic, payload FROM outbox "
                        "WHERE published_at_ms IS NULL AND id > ? ORDER BY id LIMIT ?",
                        (after_id, limit)).fetchall()


def mark_published(conn: sqlite3.Connection, ids: list[int]) -> None:
    """One statement per 100 rows (not one per row: a busy publisher marks hundreds a
    second, and on PostgreSQL each statement is a round trip)."""
    for start in range(0, len(ids), 100):
        chunk = ids[start:start + 100]
        marks = ", ".join("?" for _ in chunk)
        conn.execute(f"UPDATE outbox SET published_at_ms = ? WHERE id IN ({marks})",
                     (now_ms(), *chunk))


def pending_count(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT COUNT(*) FROM outbox WHERE published_at_ms IS NULL"
                        ).fetchone()[0]
