"""Versioned message schemas that cross a process boundary, and their MACs.

* ``tracepay.sale/1``           terminal -> gateway (MQTT), MACed with the device key
* ``tracepay.payment_result/1`` gateway -> terminal (MQTT), MACed with the device key
* ``tracepay.trade/1``          gateway -> ledger bridge (MQTT or HTTP), signed by the gateway

A consumer checks the schema first, then the MAC or signature, and is idempotent on the
record's id (``sale_id`` plus ``seq``, ``payment_id``, ``trade_id``).
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from . import canonical_json
from .money import UNIT_GRAMS, line_amount_fen
from .qr_token import CURRENCY_CODES
from .schema import Field, SchemaError, check

__all__ = [
    "SALE_SCHEMA", "PAYMENT_RESULT_SCHEMA", "TRADE_SCHEMA",
    "SALE_FIELDS", "TENDER_FIELDS", "PAYMENT_RESULT_FIELDS", "TRADE_FIELDS", "ORGS", "PAYMENT_STATUSES",
    "check_sale", "check_payment_result", "check_trade", "qr_amount_fen",
    "mac_record", "verify_record_mac", "record_hash",
]

SALE_SCHEMA = "tracepay.sale/1"
PAYMENT_RESULT_SCHEMA = "tracepay.payment_result/1"
TRADE_SCHEMA = "tracepay.trade/1"

#: The three kinds of organisation that run a ledger node.
ORGS = ("production_base", "wholesale_market", "retail_market")
PAYMENT_STATUSES = ("created", "pending", "paid", "failed", "expired", "refunded",
                    "partially_refunded")

_ID = r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}"
_DEVICE = r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}"
_HEX = r"[0-9a-f]+"
_MAX_FEN = 2**32 - 1
_UNITS = ("piece", *UNIT_GRAMS)

LINE_FIELDS: dict[str, Field] = {
    "product_code": Field(str, pattern=_ID),
    "name": Field(str, max_length=80),
    "unit": Field(str, choices=_UNITS),
    "unit_price_fen": Field(int, minimum=0, maximum=_MAX_FEN),
    "weight_g": Field(int, nullable=True, minimum=1, maximum=10_000_000),
    "quantity": Field(int, nullable=True, minimum=1, maximum=100_000),
    "amount_fen": Field(int, minimum=0, maximum=_MAX_FEN),
    "lot": Field(str, required=False, nullable=True, max_length=64),
    "origin": Field(str, required=False, nullable=True, max_length=120),
    # where a weighed line's grams came from; "manual" is printed as typed by hand
    "weight_entry": Field(str, required=False, choices=("scale", "manual", "label")),
}


def _line_adds_up(line: dict[str, Any]) -> str | None:
    try:
        expected = line_amount_fen(line["unit"], line["unit_price_fen"],
                                   weight_g=line.get("weight_g"), quantity=line.get("quantity"))
    except ValueError as exc:
        return str(exc)
    if expected != line["amount_fen"]:
        return f"amount_fen {line['amount_fen']} != unit price x weight/quantity = {expected}"
    return None


#: How a sale was settled at the counter (absent: all by the QR, no rounding). ``cash_fen``
#: of ``total_fen`` was paid in cash (all of it: a cash sale; part: mixed, the QR asks for
#: the rest); ``rounding_fen`` is 抹零, taken off the lines' sum (total = sum - rounding);
#: ``received_fen`` the notes handed over (change = received - cash), for the receipt.
TENDER_FIELDS: dict[str, Field] = {
    "cash_fen": Field(int, minimum=0, maximum=_MAX_FEN),
    "rounding_fen": Field(int, minimum=0, maximum=99),
    "received_fen": Field(int, required=False, nullable=True, minimum=0, maximum=_MAX_FEN),
}

SALE_FIELDS: dict[str, Field] = {
    "schema": Field(str, choices=(SALE_SCHEMA,)),
    "sale_id": Field(str, pattern=_ID),
    "device_id": Field(str, pattern=_DEVICE),
    "seq": Field(int, minimum=1, maximum=2**32 - 1),
    "created_at_ms": Field(int, minimum=0),
    "currency": Field(str, choices=tuple(CURRENCY_CODES)),
    "total_fen": Field(int, minimum=1, maximum=_MAX_FEN),
    "lines": Field(list, min_items=1, max_items=200,
                   items=Field(dict, items=LINE_FIELDS, predicate=_line_adds_up)),
    "qr_issued_at": Field(int, minimum=0),
    "qr_nonce": Field(str, pattern=r"[0-9a-f]{16}"),
    "key_version": Field(int, minimum=1, maximum=255),
    "status": Field(str, required=False, choices=("open", "void")),
    "tender": Field(dict, required=False, items=TENDER_FIELDS),
    "mac": Field(str, pattern=r"[0-9a-f]{64}"),
}

PAYMENT_RESULT_FIELDS: dict[str, Field] = {
    "schema": Field(str, choices=(PAYMENT_RESULT_SCHEMA,)),
    "payment_id": Field(str, pattern=_ID),
    "device_id": Field(str, pattern=_DEVICE),
    "seq": Field(int, minimum=1),
    "status": Field(str, choices=PAYMENT_STATUSES),
    "amount_fen": Field(int, minimum=0, maximum=_MAX_FEN),
    "refunded_fen": Field(int, required=False, minimum=0, maximum=_MAX_FEN),
    "currency": Field(str, choices=tuple(CURRENCY_CODES)),
    "channel": Field(str, pattern=_ID),
    "channel_txn_id": Field(str, nullable=True, max_length=64),
    "trace_code": Field(str, nullable=True, max_length=64),
    "updated_at_ms": Field(int, minimum=0),
    "mac": Field(str, pattern=r"[0-9a-f]{64}"),
}

TRADE_FIELDS: dict[str, Field] = {
    "schema": Field(str, choices=(TRADE_SCHEMA,)),
    "trade_id": Field(str, pattern=_ID),
    "trace_code": Field(str, max_length=64),
    "sale": Field(dict, items=SALE_FIELDS),
    "payment": Field(dict, items={
        "payment_id": Field(str, pattern=_ID),
        "channel": Field(str, pattern=_ID),
        "channel_txn_id": Field(str, max_length=64),
        "amount_fen": Field(int, minimum=1, maximum=_MAX_FEN),
        "currency": Field(str, choices=tuple(CURRENCY_CODES)),
        "paid_at_ms": Field(int, minimum=0),
        "payer_id": Field(str, nullable=True, max_length=128),
        # Of amount_fen, what was paid in cash (the sale's tender); the channel took the rest.
        "cash_fen": Field(int, required=False, minimum=0, maximum=_MAX_FEN),
    }),
    "seller": Field(dict, items={
        "merchant_id": Field(str, pattern=_ID),
        "name": Field(str, max_length=120),
        "org": Field(str, choices=ORGS),
    }),
    "confirmed_at_ms": Field(int, minimum=0),
    "gateway_sig": Field(str, pattern=r"[A-Za-z0-9_-]{86}"),
}


def _total_adds_up(sale: dict[str, Any]) -> None:
    tender = sale.get("tender") or {}
    rounding = tender.get("rounding_fen", 0)
    total = sum(line["amount_fen"] for line in sale["lines"]) - rounding
    if total != sale["total_fen"]:
        words = f"sum of lines - rounding {rounding}" if rounding else "sum of lines"
        raise SchemaError("$.total_fen", f"{sale['total_fen']} != {words} {total}")
    if tender.get("cash_fen", 0) > sale["total_fen"]:
        raise SchemaError("$.tender.cash_fen", "is more than the sale's total_fen")
    received = tender.get("received_fen")
    if received is not None and received < tender["cash_fen"]:
        raise SchemaError("$.tender.received_fen", "is less than cash_fen")


def check_sale(record: Any) -> dict[str, Any]:
    """Schema-check a sale, including that each line and the total add up."""
    check(SALE_FIELDS, record)
    _total_adds_up(record)
    return record


def qr_amount_fen(sale: dict[str, Any]) -> int:
    """What the sale's QR asks for: the total less what was paid in cash."""
    return sale["total_fen"] - (sale.get("tender") or {}).get("cash_fen", 0)


def check_payment_result(record: Any) -> dict[str, Any]:
    return check(PAYMENT_RESULT_FIELDS, record)


def check_trade(record: Any) -> dict[str, Any]:
    check(TRADE_FIELDS, record)
    _total_adds_up(record["sale"])
    if record["payment"]["amount_fen"] != record["sale"]["total_fen"]:
        raise SchemaError("$.payment.amount_fen", "does not equal the sale's total_fen")
    return record


def _unsigned(record: dict[str, Any], field: str) -> bytes:
    return canonical_json.dumps({k: v for k, v in record.items() if k != field})


def mac_record(record: dict[str, Any], key: bytes) -> str:
    """HMAC-SHA256 (hex) over the canonical record without its ``mac`` field."""
    domain = record["schema"].encode() + b"\x00"
    return hmac.new(key, domain + _unsigned(record, "mac"), hashlib.sha256).hexdigest()


def verify_record_mac(record: dict[str, Any], key: bytes) -> bool:
    return hmac.compare_digest(str(record.get("mac", "")), mac_record(record, key))


def record_hash(record: dict[str, Any]) -> bytes:
    """SHA-256 of the canonical record: what the ledger stores on-chain."""
    return hashlib.sha256(canonical_json.dumps(record)).digest()
