"""Cash at the counter: a sale settled all in cash becomes a paid ``cash`` payment.

No platform saw that money, so the only evidence is the sale itself: a record the terminal
MACed with its device key, saying ``tender.cash_fen == total_fen``. When such a sale is
stored (``sales_intake.accept_sale``, in the same transaction) the gateway records a
payment for it on the ``cash`` channel, paid when the sale was made; from there the
trade, the terminal's payment result and the settlement follow the same path as any
other paid order. A QR payment for the same order cannot exist: a cash sale shows no
code, and the payments table holds one payment per (device, order number).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import sqlite3
from typing import Any

from .database import now_ms

__all__ = ["CASH_CHANNEL", "is_cash_sale", "cash_payment_id", "record_cash_payment"]

log = logging.getLogger(__name__)

CASH_CHANNEL = "cash"


def is_cash_sale(sale: dict[str, Any]) -> bool:
    """All of the sale's total was paid in cash (a mixed sale's QR still pays the rest)."""
    tender = sale.get("tender") or {}
    return tender.get("cash_fen", 0) == sale["total_fen"]


def cash_payment_id(master_key: bytes, sale: dict[str, Any]) -> str:
    """Deterministic for the sale, unguessable without the master key (like QR payments)."""
    message = (f"tracepay-cash-payment-id/1|{sale['device_id']}|{sale['seq']}|"
               f"{sale['sale_id']}|{sale['total_fen']}|{sale['currency']}").encode()
    return "c" + hmac.new(master_key, message, hashlib.sha256).hexdigest()[:24]


def record_cash_payment(conn: sqlite3.Connection, sale: dict[str, Any], merchant_id: str,
                        master_key: bytes) -> bool:
    """Store the paid cash payment of a verified cash sale, inside the caller's
    transaction; False when the order already has a payment (nothing is changed)."""
    payment_id = cash_payment_id(master_key, sale)
    now = now_ms()
    cursor = conn.execute(
        "INSERT INTO payments (payment_id, device_id, merchant_id, order_no, nonce, "
        "amount_fen, currency, qr_issued_at, status, channel, channel_txn_id, paid_at_ms, "
        "created_at_ms, updated_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'paid', ?, ?, ?, ?, ?) "
        "ON CONFLICT DO NOTHING",
        (payment_id, sale["device_id"], merchant_id, sale["seq"], sale["qr_nonce"],
         sale["total_fen"], sale["currency"], sale["qr_issued_at"], CASH_CHANNEL,
         sale["sale_id"], sale["created_at_ms"], now, now))
    if cursor.rowcount != 1:
        log.warning("cash sale %s: order %s/%s already has a payment; none recorded",
                    sale["sale_id"], sale["device_id"], sale["seq"])
        return False
    conn.execute("INSERT INTO payment_events (payment_id, from_status, to_status, source, "
                 "accepted, reason, at_ms) VALUES (?, 'none', 'paid', 'cash_sale', 1, '', ?)",
                 (payment_id, now))
    return True
