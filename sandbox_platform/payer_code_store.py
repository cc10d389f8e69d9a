"""Pay-by-code (付款码) at the sandbox platform: codes, the orders they pay, reversal.

A vendor scans the code a shopper's wallet shows; the merchant asks the platform to take
the amount with it. As at the real platforms, the answer is one of: paid at once; the
shopper must confirm on their phone first (``USERPAYING``: the order waits, the merchant
polls, and reverses it if the shopper never confirms); refused (declined, not enough
money, a code expired or already used). A code pays one order only. Reversal closes a
waiting order, or refunds a paid one in full, and is idempotent.

The sandbox issues codes itself (``/sandbox/payer-codes``) with the behaviour a test wants,
since no real wallet exists here. Every change is one guarded statement inside the
store's write transaction, like the rest of the platform.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from .store import Store, StoreConflict, now_ms

__all__ = ["PayerCodes", "CODE_TTL_MS", "BEHAVIOURS"]

#: A wallet's code changes every minute; the platform accepts it that long.
CODE_TTL_MS = 60_000
BEHAVIOURS = ("pay", "password", "decline", "insufficient")
_FAIL_REASONS = {"decline": "payer_declined", "insufficient": "insufficient_funds"}


class PayerCodes:
    def __init__(self, store: Store) -> None:
        self.store = store

    def issue(self, payer_id: str, behaviour: str) -> dict[str, Any]:
        """A new 18-digit code for ``payer_id`` that behaves as ``behaviour`` when used."""
        if behaviour not in BEHAVIOURS:
            raise ValueError(f"behaviour must be one of {', '.join(BEHAVIOURS)}")
        code = "28" + "".join(secrets.choice("0123456789") for _ in range(16))
        issued = now_ms()
        with self.store.transaction() as db:
            db.execute("INSERT INTO payer_codes (auth_code, payer_id, behaviour, issued_at_ms, "
                       "expires_at_ms) VALUES (?, ?, ?, ?, ?)",
                       (code, payer_id, behaviour, issued, issued + CODE_TTL_MS))
        return {"auth_code": code, "payer_id": payer_id, "behaviour": behaviour,
                "expires_at_ms": issued + CODE_TTL_MS}

    def pay(self, app_id: str, fields: dict[str, Any], nonce_use: Any, ttl_ms: int,
            pay_now: Callable[[str, str], dict[str, Any]]) -> tuple[dict[str, Any], bool]:
        """Create the order and use the code on it, once per (app_id, out_trade_no).

        Returns (order, is_new). ``pay_now(order_id, payer_id)`` marks the order paid and
        enqueues its notification (the platform's usual paid path), for a code that pays
        at once. A repeated request for the same out_trade_no and code answers the
        order's state; another code for an existing order is a conflict.
        """
        code = fields["auth_code"]
        order, is_new = self.store.create_order(
            app_id, {**fields, "return_url": fields["notify_url"]}, ttl_ms, nonce_use)
        if not is_new:
            if order.get("auth_code") not in (None, code):
                raise StoreConflict("order_conflict", f"out_trade_no {order['out_trade_no']} "
                                    "was already charged with another payer code")
            if order.get("auth_code") == code:
                return order, False
        now = now_ms()
        with self.store.transaction() as db:  # one writer: the code is read and taken at once
            row = db.execute("SELECT * FROM payer_codes WHERE auth_code = ?", (code,)).fetchone()
            failure = _unusable(row, now)
            behaviour = row["behaviour"] if failure is None else ""
            if failure is None:
                state = {"pay": "paid", "password": "waiting"}.get(behaviour, "declined")
                db.execute("UPDATE payer_codes SET order_id = ?, state = ? WHERE auth_code = ?",
                           (order["order_id"], state, code))
                db.execute("UPDATE orders SET auth_code = ?, payer_id = ? WHERE order_id = ?",
                           (code, row["payer_id"], order["order_id"]))
            reason = failure[0] if failure else _FAIL_REASONS.get(behaviour)
            if reason:  # the order is closed and that is committed before any refusal
                db.execute("UPDATE orders SET status = 'CLOSED', closed_at_ms = ?, "
                           "fail_reason = ? WHERE order_id = ? AND status = 'WAIT_PAY'",
                           (now, reason, order["order_id"]))
        if failure is not None:
            raise StoreConflict(*failure)
        if behaviour == "pay":
            return pay_now(order["order_id"], row["payer_id"]), True
        found = self.store.order_by_id(order["order_id"])
        assert found is not None
        return found, True

    def waiting_order(self, code: str) -> dict[str, Any]:
        """The order a code waits on (the shopper's phone shows it); StoreConflict if none."""
        row = self.store._one("SELECT * FROM payer_codes WHERE auth_code = ?", code)
        if row is None:
            raise StoreConflict("unknown_payer_code", "no such payer code")
        if row["state"] != "waiting":
            raise StoreConflict("not_waiting", f"the code is {row['state']}, not waiting "
                                "for the shopper")
        order = self.store.order_by_id(row["order_id"])
        assert order is not None
        return order

    def settle(self, code: str, state: str) -> None:
        """The shopper confirmed (``paid``) or cancelled (``cancelled``) on their phone."""
        with self.store.transaction() as db:
            db.execute("UPDATE payer_codes SET state = ? WHERE auth_code = ? "
                       "AND state = 'waiting'", (state, code))

    def cancel(self, code: str) -> dict[str, Any]:
        order = self.waiting_order(code)
        self.settle(code, "cancelled")
        with self.store.transaction() as db:
            db.execute("UPDATE orders SET status = 'CLOSED', closed_at_ms = ?, fail_reason = "
                       "'payer_cancelled' WHERE order_id = ? AND status = 'WAIT_PAY'",
                       (now_ms(), order["order_id"]))
        found = self.store.order_by_id(order["order_id"])
        assert found is not None
        return found

    def reverse(self, app_id: str, out_trade_no: str,
                refund_in_full: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        """Close a waiting order, or refund a paid one in full (``refund_in_full``); the
        order afterwards. Idempotent: reversing a reversed order changes nothing."""
        order = self.store.order_by_trade_no(app_id, out_trade_no)
        if order is None:
            raise StoreConflict("unknown_order", f"no order {out_trade_no}")
        if order["reversed_at_ms"] is not None:
            return order
        if order["status"] in ("PAID", "REFUNDED") and order["refunded_fen"] < order["amount_fen"]:
            refund_in_full(order)
        now = now_ms()
        with self.store.transaction() as db:
            db.execute("UPDATE orders SET status = CASE WHEN status = 'WAIT_PAY' THEN 'CLOSED' "
                       "ELSE status END, closed_at_ms = COALESCE(closed_at_ms, ?), "
                       "fail_reason = COALESCE(fail_reason, 'reversed'), reversed_at_ms = ? "
                       "WHERE order_id = ? AND reversed_at_ms IS NULL",
                       (now, now, order["order_id"]))
            if order["auth_code"]:
                db.execute("UPDATE payer_codes SET state = 'reversed' WHERE auth_code = ?",
                           (order["auth_code"],))
        found = self.store.order_by_id(order["order_id"])
        assert found is not None
        return found


def _unusable(row: Any, now: int) -> tuple[str, str] | None:
    if row is None:
        return "payer_code_invalid", "the payer code is not one this platform issued"
    if row["order_id"] is not None:
        return "payer_code_used", "the payer code was already used; ask for a fresh one"
    if row["expires_at_ms"] <= now:
        return "payer_code_expired", "the payer code expired; ask the shopper to refresh it"
    return None
