"""Refunds: at most one payout per merchant refund number, whatever the network does.

One merchant refund number (``refund_no``) is one row and one platform refund number
(``refund_id``, sent as ``out_refund_no``) for ever; the platforms de-duplicate on it.
The outcome of a refund call is one of three:

* the platform's signed answer (success, processing, or a definite refusal);
* no usable answer (timeout, reset connection, 5xx, unreadable body): the money may have
  moved, so the refund stays ``processing`` and still counts against the payment; it is
  settled by the platform's refund query, on the next request with the same ``refund_no``
  and by the background sweeper; only a definite refusal (signed 4xx, or the query saying
  the platform never received it and a resend being refused) makes it ``failed``.

So a manager who retries, or types a new refund number after a timeout, never pays twice:
the retry settles the first refund, and a new number is refused while the first might
still have paid (``refund_exceeds_payment``).
"""

from __future__ import annotations

import logging
import secrets
import sqlite3
from typing import Any

from market_protocol import ApiError

from .cash_sales import CASH_CHANNEL
from .channels.base import ChannelError, ChannelRefund
from .database import Record, now_ms, transaction
from .payment_states import refund_status
from .payments import PaymentService

__all__ = ["Refunds", "refund_view"]

log = logging.getLogger(__name__)


def refund_view(row: Record) -> dict[str, Any]:
    return {key: row[key] for key in ("refund_id", "refund_no", "payment_id", "amount_fen",
                                      "reason", "status", "created_at_ms")}


class Refunds:
    """Asks the payment's channel to refund and records what is known, never more."""

    def __init__(self, payments: PaymentService) -> None:
        self.payments = payments
        self.db = payments.db

    def find_payment(self, payment_id: str | None, sale_id: str | None) -> sqlite3.Row | None:
        if payment_id:
            return self.payments.get(payment_id)
        row = self.db.conn.execute("SELECT device_id, seq FROM sales WHERE sale_id = ?",
                                   (sale_id,)).fetchone()
        if row is None:
            return None
        return self.db.conn.execute(
            "SELECT * FROM payments WHERE device_id = ? AND order_no = ?",
            (row["device_id"], row["seq"])).fetchone()

    def refund(self, payment: sqlite3.Row, amount_fen: int, reason: str, refund_no: str,
               requested_by: str) -> dict[str, Any]:
        """Refund part or all of a paid payment, once per (merchant, refund_no)."""
        if not isinstance(amount_fen, int) or isinstance(amount_fen, bool) or amount_fen <= 0:
            raise ApiError(400, "invalid_request", "amount_fen must be a positive integer")
        conn = self.db.conn
        with transaction(conn):
            # The payment row first, for update: on PostgreSQL two refunds of one payment
            # (two managers, two gateways) then check its remainder one after the other,
            # as SQLite's single writer does.
            conn.execute("SELECT 1 FROM payments WHERE payment_id = ?" + self.db.for_update,
                         (payment["payment_id"],))
            existing = conn.execute("SELECT * FROM refunds WHERE merchant_id = ? AND "
                                    "refund_no = ?", (payment["merchant_id"],
                                                      refund_no)).fetchone()
            if existing is None:
                refund_id = self._create(conn, payment, amount_fen, reason, refund_no,
                                         requested_by)
            elif (existing["payment_id"], existing["amount_fen"]) != (
                    payment["payment_id"], amount_fen):
                raise ApiError(409, "refund_no_conflict", "this refund number was used "
                               "for another payment or amount")
            elif existing["status"] != "processing":
                return refund_view(existing)
        if existing is not None:
            # The same request again while the outcome is open: find out, do not guess.
            return self.settle(existing["refund_id"], "retry")
        return self._send(refund_id, first=True)

    def _create(self, conn: sqlite3.Connection, payment: sqlite3.Row, amount_fen: int,
                reason: str, refund_no: str, requested_by: str) -> str:
        current = conn.execute("SELECT * FROM payments WHERE payment_id = ?",
                               (payment["payment_id"],)).fetchone()
        if current["status"] not in ("paid", "partially_refunded"):
            raise ApiError(409, "not_refundable", f"payment is {current['status']}")
        if current["channel"] == CASH_CHANNEL:  # no platform holds that money
            raise ApiError(409, "not_refundable", "a cash payment is refunded in cash at "
                           "the counter")
        # Processing refunds count: they may have paid out already.
        committed = conn.execute(
            "SELECT CAST(COALESCE(SUM(amount_fen), 0) AS BIGINT) FROM refunds WHERE payment_id = ? "
            "AND status != 'failed'", (payment["payment_id"],)).fetchone()[0]
        if committed + amount_fen > current["amount_fen"]:
            raise ApiError(409, "refund_exceeds_payment", f"at most "
                           f"{current['amount_fen'] - committed} fen can still be refunded"
                           f" (a refund whose outcome is still being settled counts)")
        refund_id = "r" + secrets.token_hex(12)
        conn.execute("INSERT INTO refunds (refund_id, merchant_id, refund_no, payment_id, "
                     "amount_fen, reason, status, requested_by, created_at_ms) VALUES "
                     "(?, ?, ?, ?, ?, ?, 'processing', ?, ?)",
                     (refund_id, payment["merchant_id"], refund_no, payment["payment_id"],
                      amount_fen, reason, requested_by, now_ms()))
        return refund_id

    def _row(self, refund_id: str) -> sqlite3.Row:
        return self.db.conn.execute("SELECT r.*, p.channel, p.amount_fen AS paid_fen FROM "
                                    "refunds r JOIN payments p USING (payment_id) WHERE "
                                    "r.refund_id = ?", (refund_id,)).fetchone()

    def _send(self, refund_id: str, *, first: bool) -> dict[str, Any]:
        """Ask the platform to refund (again: the same ``out_refund_no`` is idempotent)."""
        row = self._row(refund_id)
        channel = self.payments.channels.get(row["channel"])
        try:
            if channel is None:
                raise ChannelError("channel_unavailable", "channel not configured",
                                   definite=True)
            result = channel.refund(row["payment_id"], refund_id, row["amount_fen"],
                                    row["paid_fen"], row["reason"])
        except ChannelError as exc:
            return self._after_error(refund_id, exc, "refund" if first else "resend")
        return self._record(refund_id, result)

    def settle(self, refund_id: str, via: str) -> dict[str, Any]:
        """Settle a ``processing`` refund from the platform's refund query."""
        row = self._row(refund_id)
        if row["status"] != "processing":
            return refund_view(row)
        channel = self.payments.channels.get(row["channel"])
        if channel is None:
            log.warning("refund %s: channel %s is not configured; still processing",
                        refund_id, row["channel"])
            return refund_view(row)
        try:
            result = channel.query_refund(row["payment_id"], refund_id, row["amount_fen"])
        except ChannelError as exc:
            if exc.code == "unknown_refund" and exc.definite:
                # The platform never received it: sending it now is the first payout.
                log.info("refund %s unknown at %s (%s): sending it", refund_id,
                         row["channel"], via)
                return self._send(refund_id, first=False)
            log.warning("refund %s: query (%s) failed: %s; still processing", refund_id,
                        via, exc.code)
            return refund_view(row)
        return self._record(refund_id, result)

    def _after_error(self, refund_id: str, exc: ChannelError, step: str) -> dict[str, Any]:
        if not exc.definite:
            log.warning("refund %s: %s got no answer (%s); processing until the platform's "
                        "refund query settles it", refund_id, step, exc.code)
            return refund_view(self._row(refund_id))
        log.warning("refund %s refused by the platform: %s", refund_id, exc.code)
        self.db.conn.execute("UPDATE refunds SET status = 'failed' WHERE refund_id = ? AND "
                             "status = 'processing'", (refund_id,))
        raise ApiError(502, "refund_failed", f"the payment platform refused the refund: "
                       f"{exc.code}") from None

    def _record(self, refund_id: str, result: ChannelRefund) -> dict[str, Any]:
        conn = self.db.conn
        with transaction(conn):
            refund = conn.execute("SELECT * FROM refunds WHERE refund_id = ?",
                                  (refund_id,)).fetchone()
            cursor = conn.execute("UPDATE refunds SET status = ?, channel_refund_id = ? "
                                  "WHERE refund_id = ? AND status = 'processing'",
                                  (result.status, result.channel_refund_id, refund_id))
            if cursor.rowcount == 1 and result.status == "success":
                payment = conn.execute("SELECT * FROM payments WHERE payment_id = ?",
                                       (refund["payment_id"],)).fetchone()
                refunded = payment["refunded_fen"] + refund["amount_fen"]
                self.payments.apply_in(conn, payment["payment_id"],
                                       refund_status(payment["amount_fen"], refunded),
                                       f"refund:{refund_id}", refunded_fen=refunded)
            refund = conn.execute("SELECT * FROM refunds WHERE refund_id = ?",
                                  (refund_id,)).fetchone()
        return refund_view(refund)

    def sweep(self, older_than_s: float = 5.0, limit: int = 100) -> int:
        """Settle refunds left ``processing`` (answers lost); how many were settled."""
        rows = self.db.conn.execute(
            "SELECT refund_id FROM refunds WHERE status = 'processing' AND created_at_ms <= ?"
            " ORDER BY created_at_ms LIMIT ?",
            (now_ms() - int(older_than_s * 1000), limit)).fetchall()
        settled = 0
        for row in rows:
            # One gateway at a time settles a refund (the others skip it meanwhile).
            with self.db.claim("SELECT 1 FROM refunds WHERE refund_id = ? AND status = "
                               "'processing'", (row["refund_id"],)) as mine:
                if not mine:
                    continue
                try:
                    view = self.settle(row["refund_id"], "sweeper")
                except ApiError as exc:  # a resend the platform refused: now failed
                    log.warning("refund %s: %s", row["refund_id"], exc.message)
                    settled += 1
                    continue
                settled += view["status"] != "processing"
        return settled
