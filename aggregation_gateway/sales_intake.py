"""Sales arriving from terminals over MQTT: checked, verified, stored once.

A sale is accepted only when its schema holds, it came in on its own device's topic, the
device is known and not revoked, and its MAC verifies with the device key of the version
it names. It is stored idempotently by (device_id, seq, sale_id): the broker redelivers
QoS 1 messages, so duplicates are normal and must change nothing.

A sale re-sent with ``"status": "void"`` (docs/protocol.md section 2a) is a status change of
the stored sale, not a new one: it must carry the same ids and the same content apart from
its status and MAC, and it marks the sale void so the QR is refused from then on. The void
record is kept beside the original, which stays what any trade is built from.
"""

from __future__ import annotations

import logging
import sqlite3
from typing import Any

import orjson

from market_protocol import SchemaError, canonical_json, check_sale, verify_record_mac
from market_protocol.topics import device_from_topic

from .cash_sales import is_cash_sale, record_cash_payment
from .database import now_ms, transaction
from .payments import PaymentService

#: How far a terminal's clock may run ahead of the gateway's when it stamps a sale.
CLOCK_SKEW_MS = 60_000

__all__ = ["SaleRejected", "accept_sale"]

log = logging.getLogger(__name__)


class SaleRejected(ValueError):
    """Why a sale message was not stored."""


def _verified(service: PaymentService, topic: str, payload: bytes) -> dict:
    try:
        topic_device = device_from_topic(topic)
    except ValueError as exc:
        raise SaleRejected(str(exc)) from None
    try:
        sale = check_sale(orjson.loads(payload))
    except orjson.JSONDecodeError:
        raise SaleRejected("payload is not JSON") from None
    except SchemaError as exc:
        raise SaleRejected(f"schema: {exc}") from None
    if sale["device_id"] != topic_device:
        raise SaleRejected(f"sale of {sale['device_id']} published on {topic_device}'s topic")
    device = service.registry.get(sale["device_id"])
    if device is None:
        raise SaleRejected(f"unknown device {sale['device_id']}")
    if device["status"] == "revoked":
        raise SaleRejected(f"device {sale['device_id']} is revoked")
    if sale["key_version"] > device["key_version"]:
        raise SaleRejected("sale names a key version the gateway never issued")
    if sale["key_version"] < device["key_version"]:
        _check_grace(sale, device, service.settings["rotated_key_grace_s"])
    key = service.registry.device_key(sale["device_id"], sale["key_version"])
    if not verify_record_mac(sale, key):
        raise SaleRejected("MAC does not verify")
    return sale


def _check_grace(sale: dict, device: Any, grace_s: float) -> None:
    """A sale MACed with the key a rotation replaced is one the terminal queued offline
    before it learnt the new key: accepted only for the previous version, only if it was
    made before the rotation, and only for ``rotated_key_grace_s`` after it."""
    rotated_at = device["rotated_at_ms"]
    if sale["key_version"] != device["key_version"] - 1 or rotated_at is None:
        raise SaleRejected(f"sale MACed with key version {sale['key_version']}, replaced "
                           f"before version {device['key_version'] - 1}: refused")
    if sale["created_at_ms"] > rotated_at + CLOCK_SKEW_MS:
        raise SaleRejected(f"sale made after its key version {sale['key_version']} was "
                           f"rotated away: refused")
    if now_ms() > rotated_at + grace_s * 1000:
        raise SaleRejected(f"sale MACed with key version {sale['key_version']}, rotated "
                           f"away more than {grace_s:g} s ago (rotated_key_grace_s): refused")


def _same_sale(original: dict, void: dict) -> bool:
    def content(record: dict) -> dict:
        return {k: v for k, v in record.items() if k not in ("status", "mac")}
    return content(original) == content(void)


def _store_void(conn: sqlite3.Connection, sale: dict) -> str:
    """Mark the stored sale void (or store the void when it arrived first)."""
    ids = (sale["device_id"], sale["seq"], sale["sale_id"])
    record = canonical_json.dumps(sale).decode()
    now = now_ms()
    with transaction(conn):
        row = conn.execute("SELECT record, voided_at_ms FROM sales WHERE device_id = ? AND "
                           "seq = ? AND sale_id = ?", ids).fetchone()
        if row is None:
            cursor = conn.execute(
                "INSERT INTO sales (device_id, seq, sale_id, record, received_at_ms, "
                "voided_at_ms, void_record) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO "
                "NOTHING", (*ids, record, now, now, record))
            if cursor.rowcount == 1:
                return "voided"
            # The sale itself was stored a moment ago (another gateway, PostgreSQL).
            row = conn.execute("SELECT record, voided_at_ms FROM sales WHERE device_id = ? "
                               "AND seq = ? AND sale_id = ?", ids).fetchone()
        if row["voided_at_ms"] is not None:
            return "duplicate"
        if not _same_sale(orjson.loads(row["record"]), sale):
            raise SaleRejected("void differs from the sale it names beyond its status")
        conn.execute("UPDATE sales SET voided_at_ms = ?, void_record = ? WHERE device_id = ? "
                     "AND seq = ? AND sale_id = ? AND voided_at_ms IS NULL",
                     (now, record, *ids))
    return "voided"


def accept_sale(service: PaymentService, topic: str, payload: bytes) -> str:
    """Store a sale; returns ``"stored"``, ``"voided"`` or ``"duplicate"``; raises
    SaleRejected.

    A rejected message is logged and counted, never retried: redelivery would not make
    a forged or malformed sale valid.
    """
    conn = service.db.conn
    try:
        sale = _verified(service, topic, payload)
    except SaleRejected as exc:
        log.warning("sale on %s rejected: %s", topic, exc)
        conn.execute("INSERT INTO rejected_messages (topic, reason, at_ms) VALUES (?, ?, ?)",
                     (topic[:200], str(exc)[:500], now_ms()))
        raise
    if sale.get("status") == "void":
        try:
            return _store_void(conn, sale)
        except SaleRejected as exc:
            log.warning("void on %s rejected: %s", topic, exc)
            conn.execute("INSERT INTO rejected_messages (topic, reason, at_ms) VALUES "
                         "(?, ?, ?)", (topic[:200], str(exc)[:500], now_ms()))
            raise
    with transaction(conn):
        cursor = conn.execute(
            "INSERT INTO sales (device_id, seq, sale_id, record, received_at_ms) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (sale["device_id"], sale["seq"], sale["sale_id"],
             canonical_json.dumps(sale).decode(), now_ms()))
        if cursor.rowcount == 0:
            return "duplicate"
        if is_cash_sale(sale):
            device = service.registry.get(sale["device_id"])
            if device is None:  # checked when the MAC was verified; revoked rows stay
                raise SaleRejected("device is not enrolled")
            merchant = device["merchant_id"]
            record_cash_payment(conn, sale, merchant, service.registry.master_key)
        service.confirm_trade_for_sale(conn, sale["device_id"], sale["seq"])
    return "stored"
