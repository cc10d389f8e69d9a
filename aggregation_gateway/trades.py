"""Confirmed trades and payment results: pure builders of the records the gateway publishes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from market_protocol import (
    PAYMENT_RESULT_SCHEMA,
    TRADE_SCHEMA,
    check_payment_result,
    check_trade,
    mac_record,
    trace_code_for_sale,
)
from market_protocol.signing import sign_record

from .cash_sales import CASH_CHANNEL

if TYPE_CHECKING:
    from .database import Record

__all__ = ["build_trade", "build_payment_result", "TradeMismatch"]


class TradeMismatch(ValueError):
    """The sale and the payment do not describe the same purchase: no trade is built."""


def build_trade(sale: Mapping[str, Any], payment: Record,
                seller: Mapping[str, Any], key: Ed25519PrivateKey,
                confirmed_at_ms: int) -> dict[str, Any]:
    """The signed ``tracepay.trade/1`` for a sale and its paid payment (trade_id = sale_id).

    The QR nonce, the order number and the amount must agree: a sale whose QR was not the
    one paid must not become a trade. A mixed sale's QR asked only for what cash left: the
    trade's payment is the whole total, ``cash_fen`` of it in cash.
    """
    if (sale["device_id"], sale["seq"]) != (payment["device_id"], payment["order_no"]):
        raise TradeMismatch("sale and payment are for different orders")
    if sale["qr_nonce"] != payment["nonce"]:
        raise TradeMismatch("the paid QR's nonce is not the sale's")
    cash = (sale.get("tender") or {}).get("cash_fen", 0)
    owed = sale["total_fen"] if payment["channel"] == CASH_CHANNEL else sale["total_fen"] - cash
    if owed != payment["amount_fen"] or sale["currency"] != payment["currency"]:
        raise TradeMismatch("the amount paid is not what the sale asked for")
    trade: dict[str, Any] = {
        "schema": TRADE_SCHEMA,
        "trade_id": sale["sale_id"],
        "trace_code": trace_code_for_sale(sale["sale_id"]),
        "sale": dict(sale),
        "payment": {
            "payment_id": payment["payment_id"], "channel": payment["channel"],
            "channel_txn_id": payment["channel_txn_id"] or payment["payment_id"],
            "amount_fen": sale["total_fen"], "currency": payment["currency"],
            "paid_at_ms": payment["paid_at_ms"], "payer_id": payment["payer_id"],
            **({"cash_fen": cash} if cash else {}),
        },
        "seller": {"merchant_id": seller["merchant_id"], "name": seller["name"],
                   "org": seller["org"]},
        "confirmed_at_ms": confirmed_at_ms,
    }
    trade["gateway_sig"] = sign_record(key, trade, "gateway_sig")
    try:
        return check_trade(trade)
    except ValueError as exc:
        raise TradeMismatch(str(exc)) from exc


def build_payment_result(payment: Record, device_key: bytes,
                         sale_id: str | None, updated_at_ms: int) -> dict[str, Any]:
    """The ``tracepay.payment_result/1`` the terminal receives, MACed with its key."""
    record: dict[str, Any] = {
        "schema": PAYMENT_RESULT_SCHEMA,
        "payment_id": payment["payment_id"],
        "device_id": payment["device_id"],
        "seq": payment["order_no"],
        "status": payment["status"],
        "amount_fen": payment["amount_fen"],
        "refunded_fen": payment["refunded_fen"],
        "currency": payment["currency"],
        "channel": payment["channel"],
        "channel_txn_id": payment["channel_txn_id"],
        "trace_code": trace_code_for_sale(sale_id) if sale_id else None,
        "updated_at_ms": updated_at_ms,
    }
    record["mac"] = mac_record(record, device_key)
    return check_payment_result(record)
