"""The JSON shapes the platform answers with (pure functions of stored rows)."""

from __future__ import annotations

from typing import Any

__all__ = ["order_view", "created_view", "notification_body", "refund_view"]


def order_view(order: dict[str, Any]) -> dict[str, Any]:
    """``GET /v1/orders/<out_trade_no>``: docs/protocol.md §5 plus refund and time fields."""
    return {key: order[key] for key in (
        "order_id", "out_trade_no", "status", "amount_fen", "currency", "subject", "payer_id",
        "paid_at_ms", "channel_txn_id", "refunded_fen", "created_at_ms", "expires_at_ms")}


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


def refund_view(refund: dict[str, Any], refunded_total_fen: int) -> dict[str, Any]:
    return {"refund_id": refund["refund_id"], "out_refund_no": refund["out_refund_no"],
            "out_trade_no": refund["out_trade_no"], "order_id": refund["order_id"],
            "amount_fen": refund["amount_fen"], "fee_fen": refund["fee_fen"],
            "status": refund["status"], "created_at_ms": refund["created_at_ms"],
            "refunded_total_fen": refunded_total_fen}
