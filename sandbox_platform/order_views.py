"""The JSON shapes the platform answers with (pure functions of stored rows)."""

from __future__ import annotations

import secrets
from typing import Any

from market_protocol import canonical_json

__all__ = ["order_view", "created_view", "notification_body", "new_notification",
           "refund_view"]


def order_view(order: dict[str, Any]) -> dict[str, Any]:
    """``GET /v1/orders/<out_trade_no>``: docs/protocol.md §5 plus refund and time fields."""
    view = {key: order[key] for key in (
        "order_id", "out_trade_no", "status", "amount_fen", "currency", "subject", "payer_id",
        "paid_at_ms", "channel_txn_id", "refunded_fen", "created_at_ms", "expires_at_ms")}
    if order.get("auth_code"):
        # Paid with a payer code: USERPAYING while the shopper has yet to confirm.
        view["trade_state"] = ("USERPAYING" if order["status"] == "WAIT_PAY"
                               else order["status"])
        view["fail_reason"] = order.get("fail_reason")
    if order.get("reversed_at_ms"):
        view["reversed_at_ms"] = order["reversed_at_ms"]
    return view


def created_view(order: dict[str, Any], checkout_url: str) -> dict[str, Any]:
    return {"order_id": order["order_id"], "out_trade_no": order["out_trade_no"],
            "status": order["status"], "amount_fen": order["amount_fen"],
            "currency": order["currency"], "expires_at_ms": order["expires_at_ms"],
            "checkout_url": checkout_url}


def notification_body(notify_id: str, order: dict[str, Any]) -> dict[str, Any]:
    return {"notify_id": notify_id, "order_id": order["order_id"],
            "out_trade_no": order["out_trade_no"], "status": order["status"],
            "amount_fen": order["amount_fen"], "currency": order["currency"],
            "payer_id": order["payer_id"], "channel_txn_id": order["channel_txn_id"],
            "paid_at_ms": order["paid_at_ms"]}


def new_notification(paid: dict[str, Any]) -> tuple[str, bytes]:
    """(notify_id, body) of the notification a newly paid order sends its merchant."""
    notify_id = "ntf_" + secrets.token_urlsafe(12)
    return notify_id, canonical_json.dumps(notification_body(notify_id, paid))


def refund_view(refund: dict[str, Any], refunded_total_fen: int) -> dict[str, Any]:
    return {"refund_id": refund["refund_id"], "out_refund_no": refund["out_refund_no"],
            "out_trade_no": refund["out_trade_no"], "order_id": refund["order_id"],
            "amount_fen": refund["amount_fen"], "fee_fen": refund["fee_fen"],
            "status": refund["status"], "created_at_ms": refund["created_at_ms"],
            "refunded_total_fen": refunded_total_fen}
