"""Orders that had no news: the active query, expiry, and closing what may not be paid.

A pending order without a notification is asked about (``query_after_s``, then every
``query_interval_s``); one past its pay window and its QR's lifetime is closed at the
channel and expired; the open orders of a voided sale or a revoked terminal are closed at
once. Closing always asks the channel once more afterwards, so a payment that raced the
close is recorded as paid, never expired. Every change goes through the payment's guarded
state machine (``PaymentService``).

Several gateways may sweep one PostgreSQL database: each job (one order to query, expire
or close) is taken with ``Database.claim``, so while one gateway works on an order the
others skip it, and the condition that made it due is checked again under the lock.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from typing import Any

from market_protocol import ApiError

from .channels.base import ChannelError
from .database import now_ms, transaction
from .payments import PaymentService

__all__ = ["OrderSweeps"]

log = logging.getLogger(__name__)

#: An order that may still be closed or expired.
_OPEN = "SELECT 1 FROM payments WHERE payment_id = ? AND status IN ('created', 'pending')"
#: A pending order not queried since ``?`` (by any gateway).
_QUERY_DUE = ("SELECT 1 FROM payments WHERE payment_id = ? AND status = 'pending' AND "
              "COALESCE(last_query_at_ms, 0) <= ?")


class OrderSweeps:
    """Run by the background sweeper, by a revoke, and by a shopper's "check now"."""

    def __init__(self, payments: PaymentService) -> None:
        self.payments = payments
        self.db = payments.db

    def query(self, payment_id: str, source: str = "query") -> sqlite3.Row | None:
        """Ask the channel about a pending order now and record its answer."""
        payment = self.payments.get(payment_id)
        if payment is None or payment["status"] != "pending":
            return payment
        channel = self.payments.channels.get(payment["channel"])
        if channel is None:
            return payment
        self.db.conn.execute("UPDATE payments SET last_query_at_ms = ? WHERE payment_id = ?",
                             (now_ms(), payment_id))
        try:
            status = channel.query_order(payment_id)
        except ChannelError as exc:
            log.info("query of %s at %s failed: %s", payment_id, payment["channel"], exc.code)
            return payment
        with contextlib.suppress(ApiError):
            self.payments.apply_channel_status(payment_id, status, source)
        return self.payments.get(payment_id)

    def sweep(self) -> dict[str, int]:
        """Query pending orders that had no news, expire those past their window, and close
        those whose sale the vendor voided (a payment that raced the close stays paid)."""
        now = now_ms()
        counts = {"queried": 0, "expired": 0}
        settings = self.payments.settings
        query_before = now - settings["query_after_s"] * 1000
        rows = self.db.conn.execute(
            "SELECT payment_id, status, created_at_ms, qr_issued_at, last_query_at_ms, method "
            "FROM payments WHERE status IN ('created', 'pending') AND created_at_ms <= ? "
            "ORDER BY created_at_ms LIMIT 500", (query_before,)).fetchall()
        # Voided sales and revoked terminals: their open orders are closed now (a revoke
        # closes them itself; this catches one whose closing was cut short).
        voided = self.db.conn.execute(
            "SELECT p.payment_id, p.status FROM payments p JOIN sales s ON "
            "s.device_id = p.device_id AND s.seq = p.order_no WHERE p.status IN "
            "('created', 'pending') AND s.voided_at_ms IS NOT NULL LIMIT 500").fetchall()
        voided += self.db.conn.execute(
            "SELECT p.payment_id, p.status FROM payments p JOIN devices d USING (device_id) "
            "WHERE p.status IN ('created', 'pending') AND d.status = 'revoked' LIMIT 500"
        ).fetchall()
        voided = list({row["payment_id"]: row for row in voided}.values())
        for row in voided:
            # The vendor voided the sale: close its order now rather than at the QR's end.
            counts["expired"] += self._expire_claimed(row["payment_id"],
                                                      close=row["status"] == "pending")
        handled = {row["payment_id"] for row in voided}
        for row in rows:
            if row["payment_id"] in handled:
                continue
            action = self._due(row, now)
            if action == "wait":
                continue
            if action != "query":
                counts["expired"] += self._expire_claimed(row["payment_id"],
                                                          close=action == "close")
                continue
            last = row["last_query_at_ms"] or 0
            due = now - settings["query_interval_s"] * 1000
            if last <= due:
                with self.db.claim(_QUERY_DUE, (row["payment_id"], due)) as mine:
                    if mine:
                        self.query(row["payment_id"], "sweeper")
                        counts["queried"] += 1
        return counts

    def _due(self, row: sqlite3.Row, now: int) -> str:
        """What an open order needs now: ``close`` (at the channel, then expire),
        ``expire`` (nothing to close), ``query`` (if not asked lately) or ``wait``."""
        settings = self.payments.settings
        if row["method"] == "payer_code":
            # Charged by the gateway itself: reversed once the shopper had long enough to
            # confirm (a 'created' row is one whose call was cut short).
            if row["created_at_ms"] + settings["payer_code_wait_s"] * 1000 <= now:
                return "close"
            return "wait" if row["status"] == "created" else "query"
        qr_dead = (row["qr_issued_at"] + settings["qr_lifetime_s"]) * 1000 <= now
        if row["status"] == "created":
            return "expire" if qr_dead else "wait"
        window_over = row["created_at_ms"] + settings["pay_window_s"] * 1000 <= now
        return "close" if qr_dead and window_over else "query"

    def _expire_claimed(self, payment_id: str, close: bool) -> int:
        with self.db.claim(_OPEN, (payment_id,)) as mine:
            return self._expire(payment_id, close) if mine else 0

    def close_device_orders(self, device_id: str) -> dict[str, int]:
        """A revoked terminal's open orders are closed at the channel now, so none of its
        codes already shown to a shopper can still be paid; one that was paid in the
        meantime is recorded as paid (and can be refunded)."""
        rows = self.db.conn.execute(
            "SELECT payment_id, status FROM payments WHERE device_id = ? AND status IN "
            "('created', 'pending')", (device_id,)).fetchall()
        closed = sum(self._expire_claimed(row["payment_id"], close=row["status"] == "pending")
                     for row in rows)
        return {"open": len(rows), "closed": closed}

    def _expire(self, payment_id: str, close: bool) -> int:
        """Close at the channel first, then ask once more: a payment that raced the close
        is recorded as paid, never expired."""
        payment = self.payments.get(payment_id)
        if payment is None:
            return 0
        channel = self.payments.channels.get(payment["channel"])
        if close and channel is not None and payment["method"] == "payer_code":
            return self._reverse(payment_id, channel)
        if close and channel is not None:
            try:
                channel.close_order(payment_id)
            except ChannelError as exc:
                log.info("close of %s at %s: %s", payment_id, payment["channel"], exc.code)
            try:
                status = channel.query_order(payment_id)
            except ChannelError as exc:
                if exc.code != "unknown_order":
                    return 0  # cannot be sure it was not paid: try again next sweep
                # The channel has no such order (its records were lost): nothing was paid.
                log.warning("order %s is unknown at %s; expiring it", payment_id,
                            payment["channel"])
                status = None
            if status is not None and status.status not in ("closed", "failed"):
                if status.status == "paid":
                    self.payments.apply_channel_status(payment_id, status, "sweeper")
                return 0
        conn = self.db.conn
        with transaction(conn):
            return int(self.payments.apply_in(conn, payment_id, "expired", "sweeper"))

    def _reverse(self, payment_id: str, channel: Any) -> int:
        """A payer-code charge that never completed: ask first (a payment that arrived is
        recorded as paid and kept), else reverse it, which closes the order or, if the
        shopper confirmed in between, gives the money back in full."""
        try:
            status = channel.query_order(payment_id)
            if status.status == "paid":
                with contextlib.suppress(ApiError):
                    self.payments.apply_channel_status(payment_id, status, "sweeper")
                return 0
            status = channel.reverse_order(payment_id)
        except ChannelError as exc:
            if not exc.definite:
                return 0  # unknown: try again next sweep
            log.warning("reversal of %s at %s refused: %s", payment_id, exc.code, exc.message)
        else:
            if status.status == "refunded":
                log.warning("payer-code order %s was paid while it was reversed: the "
                            "platform refunded it in full", payment_id)
        conn = self.db.conn
        with transaction(conn):
            return int(self.payments.apply_in(conn, payment_id, "expired", "sweeper:reversed"))

