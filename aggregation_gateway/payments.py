"""Payments: the orders the scan landing creates (checks in ``order_creation``) and the
channel's results.

The I/O shell around ``payment_states``: every change is one guarded
``UPDATE ... WHERE status = <expected>`` inside a transaction that also writes the event
and the outbox messages it causes, so a notification, a query and a sweeper racing each
other (in different processes) apply each change exactly once.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable, Mapping
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from market_protocol import (
    ApiError,
    QRTokenError,
    decode_token,
    trace_code_for_sale,
    verify_token,
)
from market_protocol.topics import TRADES_TOPIC, results_topic

from . import outbox
from .alerts import record_amount_mismatch
from .audit_log import AuditLog
from .channels.audit import redact_body, redact_headers
from .channels.base import (
    ChannelError,
    ChannelOrderStatus,
    ChannelSignatureError,
    PaymentChannel,
)
from .database import Database, Record, now_ms, transaction
from .devices import DeviceRegistry
from .order_creation import (
    check_age,
    check_existing,
    close_orphan,
    create_at_channel,
    payment_id_for,
)
from .payment_states import FINAL_PAID, decide, status_from_channel
from .trades import TradeMismatch, build_payment_result, build_trade

__all__ = ["PaymentService"]

log = logging.getLogger(__name__)


class PaymentService:
    def __init__(self, db: Database, registry: DeviceRegistry,
                 channels: Mapping[str, PaymentChannel], signing_key: Ed25519PrivateKey,
                 settings: Mapping[str, Any], clock: Callable[[], float] = time.time,
                 audit: AuditLog | None = None) -> None:
        self.db = db
        self.audit = audit
        self.registry = registry
        self.channels = channels
        self.signing_key = signing_key
        self.settings = settings
        self.clock = clock

    # -- reads ----------------------------------------------------------------------------
    def get(self, payment_id: str) -> sqlite3.Row | None:
        return self.db.conn.execute("SELECT * FROM payments WHERE payment_id = ?",
                                    (payment_id,)).fetchone()

    def sale_for(self, payment: Record) -> dict[str, Any] | None:
        row = self.db.conn.execute(
            "SELECT record FROM sales WHERE device_id = ? AND seq = ? ORDER BY received_at_ms "
            "LIMIT 1", (payment["device_id"], payment["order_no"])).fetchone()
        return orjson.loads(row["record"]) if row else None

    def view(self, payment: Record, *, detail: bool = False,
             device: Record | None = None) -> dict[str, Any]:
        """The public JSON of a payment (docs/protocol.md section 4)."""
        device = device or self.registry.get(payment["device_id"])
        sale = self.sale_for(payment)
        result: dict[str, Any] = {
            "payment_id": payment["payment_id"], "status": payment["status"],
            "amount_fen": payment["amount_fen"], "currency": payment["currency"],
            "refunded_fen": payment["refunded_fen"], "channel": payment["channel"],
            "merchant": {"merchant_id": payment["merchant_id"],
                         "name": device["merchant_name"] if device else None,
                         "org": device["org"] if device else None},
            "items": [_public_line(line) for line in sale["lines"]] if sale else [],
            "checkout_url": payment["checkout_url"],
            "trace_code": trace_code_for_sale(sale["sale_id"]) if sale else None,
            "expires_at_ms": (payment["qr_issued_at"] + self.settings["qr_lifetime_s"]) * 1000,
        }
        if detail:
            result.update(device_id=payment["device_id"], seq=payment["order_no"],
                          sale_id=sale["sale_id"] if sale else None,
                          paid_at_ms=payment["paid_at_ms"],
                          created_at_ms=payment["created_at_ms"])
        return result

    # -- scan landing ---------------------------------------------------------------------
    def verify_scan(self, token: str) -> tuple[Any, sqlite3.Row, sqlite3.Row | None]:
        """Every check on a scanned QR that needs no channel: MAC, device status and key
        version, replay (paid, closed, conflicting), age and void.

        Returns (payload, device, existing payment or None). It runs before anything looks
        at channels, so a forged or replayed code is refused the same way whatever the
        channels' state.
        """
        try:
            payload, _, _ = decode_token(token)
        except QRTokenError as exc:
            raise ApiError(400, "malformed_token", str(exc)) from None
        device = self.registry.get(payload.device_id)
        if device is None:
            raise ApiError(404, "unknown_device", "this QR code names a device the gateway "
                           "does not know")
        if device["status"] == "revoked":
            raise ApiError(403, "device_revoked", "this stall's terminal was taken out of "
                           "service by the market: its codes can no longer be paid")
        if payload.key_version != device["key_version"]:
            raise ApiError(403, "bad_mac", "the QR code was signed with a key that is no "
                           "longer valid")
        key = self.registry.device_key(device["device_id"], device["key_version"])
        try:
            verify_token(token, key, self.settings["public_url"])
        except QRTokenError as exc:
            raise ApiError(403, "bad_mac", str(exc)) from None
        # One statement for both: the order, if any, and whether its sale was voided.
        found = self.db.conn.execute(
            "SELECT (SELECT 1 FROM sales WHERE device_id = :d AND seq = :n AND voided_at_ms "
            "IS NOT NULL LIMIT 1) AS voided, p.* FROM (SELECT 1) AS one LEFT JOIN payments p ON "
            "p.device_id = :d AND p.order_no = :n",
            {"d": payload.device_id, "n": payload.order_no}).fetchone()
        existing = found if found["payment_id"] is not None else None
        if existing is not None:
            check_existing(existing, payload)
        check_age(payload, self.clock(), self.settings)
        if found["voided"]:
            raise ApiError(410, "sale_voided", "the vendor cancelled this sale; ask for a new "
                           "code")
        return payload, device, existing

    def payment_id_for(self, payload: Any) -> str:
        return payment_id_for(self.registry.master_key, payload)

    def scan(self, token: str, channel_name: str,
             checked: tuple[Any, sqlite3.Row, sqlite3.Row | None] | None = None
             ) -> tuple[Record, sqlite3.Row]:
        """The payment for a scanned QR (and its device), its order created at the channel
        exactly once. ``checked`` is what ``verify_scan`` already returned for ``token``."""
        payload, device, existing = checked or self.verify_scan(token)
        if existing is not None:
            if existing["status"] != "created":
                return existing, device
            channel_name = existing["channel"]
        payment_id = self.payment_id_for(payload)
        audit = self.audit.deferred() if self.audit else contextlib.nullcontext()
        with audit:
            created = create_at_channel(self.channels, self.settings, payment_id, payload,
                                        device, channel_name)
            conn = self.db.conn
            with transaction(conn):
                if self.audit:
                    self.audit.flush(conn)
                stored = self._record_order(conn, payment_id, payload, device, channel_name,
                                            created)
        if stored is not None:
            return stored, device
        payment = self.db.conn.execute(
            "SELECT * FROM payments WHERE device_id = ? AND order_no = ?",
            (payload.device_id, payload.order_no)).fetchone()
        if payment["payment_id"] != payment_id:
            close_orphan(self.channels, channel_name, payment_id)
            check_existing(payment, payload)
        return payment, device

    def _record_order(self, conn: sqlite3.Connection, payment_id: str, payload: Any,
                      device: sqlite3.Row, channel_name: str, created: Any
                      ) -> dict[str, Any] | None:
        """Store the order the channel created, as ``pending``: the row if this call stored
        it, None if another request had stored the order first.

        The hot path of the scan landing: one insert, both events and the terminal's
        ``pending`` result, without re-reading what was just written.
        """
        now = now_ms()
        row = {"payment_id": payment_id, "device_id": payload.device_id,
               "merchant_id": device["merchant_id"], "order_no": payload.order_no,
               "nonce": payload.nonce_hex, "amount_fen": payload.amount_fen,
               "currency": payload.currency, "qr_issued_at": payload.issued_at,
               "status": "pending", "channel": channel_name,
               "channel_order_id": created.channel_order_id,
               "checkout_url": created.checkout_url, "channel_txn_id": None,
               "refunded_fen": 0, "created_at_ms": now, "updated_at_ms": now,
               "payer_id": None, "paid_at_ms": None, "last_query_at_ms": None}
        cursor = conn.execute(
            "INSERT INTO payments (payment_id, device_id, merchant_id, order_no, "
            "nonce, amount_fen, currency, qr_issued_at, status, channel, channel_order_id, "
            "checkout_url, created_at_ms, updated_at_ms) VALUES (:payment_id, :device_id, "
            ":merchant_id, :order_no, :nonce, :amount_fen, :currency, :qr_issued_at, "
            ":status, :channel, :channel_order_id, :checkout_url, :created_at_ms, "
            ":updated_at_ms) ON CONFLICT DO NOTHING", row)
        if cursor.rowcount == 1:
            conn.executemany(
                "INSERT INTO payment_events (payment_id, from_status, to_status, source, "
                "accepted, reason, at_ms) VALUES (?, ?, ?, ?, 1, '', ?)",
                [(payment_id, "none", "created", "scan", now),
                 (payment_id, "created", "pending", "create_order", now)])
            key = self.registry.device_key(payload.device_id, device["key_version"])
            outbox.enqueue(conn, "payment_result", f"{payment_id}:pending:0",
                           results_topic(payload.device_id),
                           build_payment_result(row, key, None, now))
            return row
        conn.execute("UPDATE payments SET channel_order_id = ?, checkout_url = ? WHERE "
                     "payment_id = ? AND checkout_url IS NULL",
                     (created.channel_order_id, created.checkout_url, payment_id))
        self._apply(conn, payment_id, "pending", "create_order")
        return None

    # -- state changes --------------------------------------------------------------------
    def _event(self, conn: sqlite3.Connection, payment_id: str, from_status: str,
               to_status: str, source: str, accepted: bool, reason: str = "") -> None:
        conn.execute("INSERT INTO payment_events (payment_id, from_status, to_status, source,"
                     " accepted, reason, at_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
                     (payment_id, from_status, to_status, source, int(accepted), reason,
                      now_ms()))

    def apply_in(self, conn: sqlite3.Connection, payment_id: str, target: str, source: str,
                 **fields: Any) -> bool:
        """``_apply`` for the payment's neighbours (refunds) inside their transaction."""
        return self._apply(conn, payment_id, target, source, **fields)

    def _apply(self, conn: sqlite3.Connection, payment_id: str, target: str, source: str,
               **fields: Any) -> bool:
        """Move a payment to ``target`` inside the caller's transaction; True if it moved.

        The caller holds a write transaction and the row is read ``for_update`` (SQLite:
        ``BEGIN IMMEDIATE`` is the only writer; PostgreSQL: the row is locked), so the
        read and the guarded update see the same row; the guard still protects against
        any writer outside a transaction.
        """
        payment = conn.execute("SELECT * FROM payments WHERE payment_id = ?"
                               + self.db.for_update, (payment_id,)).fetchone()
        decision = decide(payment["status"], target)
        if not decision.apply:
            if decision.refused:
                log.warning("payment %s: refused %s -> %s from %s", payment_id,
                            payment["status"], target, source)
                self._event(conn, payment_id, payment["status"], target, source, False,
                            decision.reason)
            return False
        now = now_ms()
        assignments = ", ".join(f"{name} = ?" for name in fields)
        sql = (f"UPDATE payments SET status = ?, updated_at_ms = ?"
               f"{', ' + assignments if assignments else ''} "
               "WHERE payment_id = ? AND status = ?")
        cursor = conn.execute(sql, (target, now, *fields.values(), payment_id,
                                    payment["status"]))
        if cursor.rowcount != 1:
            return False
        self._event(conn, payment_id, payment["status"], target, source, True)
        updated = conn.execute("SELECT * FROM payments WHERE payment_id = ?",
                               (payment_id,)).fetchone()
        self._enqueue_result(conn, updated, now)
        if target == "paid":
            self._enqueue_trade(conn, updated)
        return True

    def _enqueue_result(self, conn: sqlite3.Connection, payment: sqlite3.Row, now: int) -> None:
        device = conn.execute("SELECT key_version FROM devices WHERE device_id = ?",
                              (payment["device_id"],)).fetchone()
        if device is None:
            return
        sale = conn.execute("SELECT sale_id FROM sales WHERE device_id = ? AND seq = ? LIMIT 1",
                            (payment["device_id"], payment["order_no"])).fetchone()
        key = self.registry.device_key(payment["device_id"], device["key_version"])
        record = build_payment_result(payment, key, sale["sale_id"] if sale else None, now)
        outbox.enqueue(conn, "payment_result",
                       f"{payment['payment_id']}:{payment['status']}:{payment['refunded_fen']}",
                       results_topic(payment["device_id"]), record)

    def _enqueue_trade(self, conn: sqlite3.Connection, payment: sqlite3.Row) -> bool:
        """Publish the confirmed trade when both the sale and the paid payment are known."""
        if payment["status"] not in FINAL_PAID or payment["paid_at_ms"] is None:
            return False
        rows = conn.execute("SELECT record FROM sales WHERE device_id = ? AND seq = ?",
                            (payment["device_id"], payment["order_no"])).fetchall()
        seller = conn.execute("SELECT merchant_id, name, org FROM merchants WHERE "
                              "merchant_id = ?", (payment["merchant_id"],)).fetchone()
        for row in rows:
            sale = orjson.loads(row["record"])
            try:
                trade = build_trade(sale, payment, seller, self.signing_key, now_ms())
            except TradeMismatch as exc:
                log.warning("sale %s does not match payment %s: %s", sale["sale_id"],
                            payment["payment_id"], exc)
                continue
            return outbox.enqueue(conn, "trade", trade["trade_id"], TRADES_TOPIC, trade)
        return False

    def confirm_trade_for_sale(self, conn: sqlite3.Connection, device_id: str, seq: int) -> bool:
        """Called when a sale arrives: its payment may already be paid.

        The payment row is read ``for_update``: on PostgreSQL a payment turning paid in
        another transaction at this moment either finishes first (and is seen paid here)
        or waits for this sale to commit (and then finds it), so the trade is never lost
        between the two."""
        payment = conn.execute("SELECT * FROM payments WHERE device_id = ? AND order_no = ?"
                               + self.db.for_update, (device_id, seq)).fetchone()
        if payment is None:
            return False
        if payment["status"] in FINAL_PAID:
            self._enqueue_result(conn, payment, now_ms())
        return self._enqueue_trade(conn, payment)

    def apply_channel_status(self, payment_id: str, status: ChannelOrderStatus,
                             source: str) -> bool:
        """Record what the channel says about an order; refuse a paid amount that differs."""
        target = status_from_channel(status.status)
        if target is None:
            return False
        conn = self.db.conn
        mismatch = None
        with transaction(conn):
            payment = conn.execute("SELECT * FROM payments WHERE payment_id = ?",
                                   (payment_id,)).fetchone()
            if payment is None:
                return False
            if target == "paid":
                if status.amount_fen != payment["amount_fen"]:
                    mismatch = payment
                else:
                    return self._apply(conn, payment_id, "paid", source,
                                       channel_txn_id=status.channel_txn_id,
                                       payer_id=status.payer_id,
                                       paid_at_ms=status.paid_at_ms or now_ms())
            elif payment["status"] == "created" and target == "failed":
                return False
            else:
                return self._apply(conn, payment_id, target, source)
        record_amount_mismatch(self.db, mismatch, status.amount_fen, source)
        raise ApiError(400, "amount_mismatch", "the paid amount differs from the order")

    # -- notifications --------------------------------------------------------------------
    def handle_notification(self, channel_name: str, headers: Mapping[str, str],
                            body: bytes) -> tuple[int, bytes, Mapping[str, str]]:
        channel = self.channels.get(channel_name)
        if channel is None:
            raise ApiError(404, "unknown_channel", f"no channel {channel_name}")
        try:
            note = channel.parse_notification(headers, body)
        except ChannelSignatureError:
            log.warning("notification on %s with a bad signature refused", channel_name)
            raise ApiError(401, "bad_signature", "the notification's signature does not "
                           "verify") from None
        except ChannelError as exc:
            raise ApiError(400, "malformed_notification", exc.message) from None
        if self.audit is not None:
            self.audit({"channel": channel_name, "method": "NOTIFY",
                        "url": f"/v1/notify/{channel_name}",
                        "request": orjson.dumps({"headers": redact_headers(headers),
                                                 "body": redact_body(body)}).decode(),
                        "status": None, "response": None, "error": None,
                        "at_ms": now_ms(), "elapsed_ms": 0})
        payment = self.get(note.out_trade_no)
        if payment is None or payment["channel"] != channel_name:
            raise ApiError(404, "unknown_order", "no such order at this gateway")
        status = ChannelOrderStatus(note.out_trade_no, note.status, note.amount_fen,
                                    note.channel_txn_id, note.payer_id, note.paid_at_ms)
        self.apply_channel_status(payment["payment_id"], status, f"notify:{note.notify_id}")
        conn = self.db.conn
        conn.execute("INSERT INTO notifications VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                     (channel_name, note.notify_id, payment["payment_id"], note.status,
                      now_ms()))
        return channel.acknowledge(True)


def _public_line(line: Mapping[str, Any]) -> dict[str, Any]:
    return {key: line.get(key) for key in ("product_code", "name", "unit", "unit_price_fen",
                                           "weight_g", "quantity", "amount_fen", "lot",
                                           "origin")}
