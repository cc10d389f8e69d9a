"""What the manager must look at: payments whose channel reported another amount.

Kept apart from the payment state machine: an alert is written in its own transaction
(the refusal that follows it must not roll it back) and is only ever read by the manager
pages.
"""

from __future__ import annotations

import logging
from typing import Any

from .database import Database, Record, now_ms, transaction

__all__ = ["record_amount_mismatch", "open_alerts"]

log = logging.getLogger(__name__)


def record_amount_mismatch(db: Database, payment: Record, paid_fen: int, source: str
                           ) -> None:
    """A channel says a different amount was paid: nothing about the payment changes,
    but the refused event and a manager alert are written (every retry of the
    notification bumps the alert's count)."""
    payment_id = payment["payment_id"]
    log.error("payment %s: channel reports %s fen paid, expected %s", payment_id,
              paid_fen, payment["amount_fen"])
    detail = (f"{source}: the channel reports {paid_fen} fen paid for an order of "
              f"{payment['amount_fen']} fen")
    conn, now = db.conn, now_ms()
    with transaction(conn):
        conn.execute("INSERT INTO payment_events (payment_id, from_status, to_status, "
                     "source, accepted, reason, at_ms) VALUES (?, ?, 'paid', ?, 0, ?, ?)",
                     (payment_id, payment["status"], source,
                      "amount differs from the order", now))
        conn.execute("INSERT INTO alerts (kind, payment_id, detail, first_at_ms, "
                     "last_at_ms) VALUES ('amount_mismatch', ?, ?, ?, ?) ON CONFLICT "
                     "(kind, payment_id) DO UPDATE SET seen = alerts.seen + 1, detail = "
                     "excluded.detail, last_at_ms = excluded.last_at_ms",
                     (payment_id, detail, now, now))


def open_alerts(db: Database, limit: int = 50) -> list[dict[str, Any]]:
    """Newest first, with the payment's merchant and channel."""
    rows = db.conn.execute(
        "SELECT a.kind, a.payment_id, a.detail, a.seen, a.first_at_ms, a.last_at_ms, "
        "p.merchant_id, p.channel FROM alerts a LEFT JOIN payments p USING (payment_id) "
        "ORDER BY a.last_at_ms DESC LIMIT ?", (limit,)).fetchall()
    return [dict(row) for row in rows]
