"""Adapter for the sandbox payment platform (docs/protocol.md section 5).

Requests carry ``X-App-Id``, ``X-Timestamp`` (epoch ms), a fresh ``X-Nonce`` and
``X-Signature``: Ed25519 (base64url) over ``METHOD\nPATH[?QUERY]\nTIMESTAMP\nNONCE\nBODY``,
so a captured request cannot be sent again, nor its signature moved to another order.
Every response and notification must carry the platform's ``X-Signature`` over its raw
body; one that does not verify is never acted on.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from market_protocol import canonical_json
from market_protocol.signing import sign, verify

from .base import (
    ChannelError,
    ChannelNotification,
    ChannelOrder,
    ChannelOrderCreated,
    ChannelOrderStatus,
    ChannelRefund,
    ChannelSignatureError,
    HttpRequest,
    Transport,
)

__all__ = ["SandboxChannel", "SANDBOX_STATUSES"]

#: Platform status -> normalised channel status.
SANDBOX_STATUSES = {"WAIT_PAY": "pending", "PAID": "paid", "CLOSED": "closed",
                    "REFUNDED": "refunded"}


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    return next((value for key, value in headers.items() if key.lower() == wanted), None)


class SandboxChannel:
    """The sandbox platform behind the ``PaymentChannel`` interface."""

    name = "sandbox"

    def __init__(self, base_url: str, app_id: str, private_key: Ed25519PrivateKey,
                 platform_key: Ed25519PublicKey, transport: Transport,
                 clock: Callable[[], float] = time.time) -> None:
        self.base_url = base_url.rstrip("/")
        self.clock = clock
        self.app_id = app_id
        self.private_key = private_key
        self.platform_key = platform_key
        self.transport = transport

    # -- signed calls ---------------------------------------------------------------------
    def _call(self, method: str, path: str, payload: dict[str, Any] | None = None
              ) -> tuple[int, Any]:
        body = canonical_json.dumps(payload) if payload is not None else b""
        try:
            return self._signed_call(method, path, body, payload is not None)
        except ChannelError as exc:
            if exc.code != "replayed_nonce":
                raise
            # The transport re-sent a request whose first copy reached the platform (the
            # connection died before its answer). Every call is idempotent by its merchant
            # number, so asking again under a fresh nonce is safe.
            return self._signed_call(method, path, body, payload is not None)

    def _signed_call(self, method: str, path: str, body: bytes, is_json: bool
                     ) -> tuple[int, Any]:
        url = self.base_url + path
        parts = urlsplit(url)
        target = unquote(parts.path) + (f"?{parts.query}" if parts.query else "")
        timestamp = str(int(self.clock() * 1000))
        nonce = secrets.token_urlsafe(18)
        signed = f"{method}\n{target}\n{timestamp}\n{nonce}\n".encode() + body
        headers = {"X-App-Id": self.app_id, "X-Timestamp": timestamp, "X-Nonce": nonce,
                   "X-Signature": sign(self.private_key, signed),
                   "Accept": "application/json"}
        if is_json:
            headers["Content-Type"] = "application/json"
        response = self.transport(HttpRequest(method, url, headers, body))
        signature = _header(response.headers, "X-Signature")
        if not signature or not verify(self.platform_key, response.body, signature):
            raise ChannelSignatureError(f"{method} {path}: platform answer (HTTP "
                                        f"{response.status}) is not signed by the platform")
        try:
            data = orjson.loads(response.body) if response.body else {}
        except orjson.JSONDecodeError as exc:
            raise ChannelError("bad_response", f"{method} {path}: not JSON") from exc
        if response.status >= 400:
            code = data.get("error", f"http_{response.status}") if isinstance(data, dict) else ""
            message = data.get("message", "") if isinstance(data, dict) else ""
            # Signed by the platform (checked above): a 4xx is its own, definite refusal.
            raise ChannelError(str(code), f"{method} {path}: {message}",
                               definite=400 <= response.status < 500)
        if not isinstance(data, dict):
            raise ChannelError("bad_response", f"{method} {path}: expected an object")
        return response.status, data

    def create_order(self, order: ChannelOrder) -> ChannelOrderCreated:
        _, data = self._call("POST", "/v1/orders", {
            "out_trade_no": order.out_trade_no, "amount_fen": order.amount_fen,
            "currency": order.currency, "subject": order.subject,
            "notify_url": order.notify_url, "return_url": order.return_url})
        if data.get("out_trade_no") != order.out_trade_no:
            raise ChannelError("bad_response", "order answer names another out_trade_no")
        return ChannelOrderCreated(order.out_trade_no, str(data["order_id"]),
                                   str(data["checkout_url"]))

    def query_order(self, out_trade_no: str) -> ChannelOrderStatus:
        _, data = self._call("GET", f"/v1/orders/{quote(out_trade_no, safe='')}")
        return self._status(data, out_trade_no)

    def close_order(self, out_trade_no: str) -> None:
        self._call("POST", f"/v1/orders/{quote(out_trade_no, safe='')}/close", {})

    # -- pay-by-code (付款码) ----------------------------------------------------------------
    def pay_by_code(self, order: ChannelOrder, auth_code: str) -> ChannelOrderStatus:
        """Charge a scanned payer code: ``paid``, ``pending`` (the shopper is confirming on
        their phone: query until it settles, reverse if it never does) or ``closed``
        (declined); a code the platform refuses raises a definite ChannelError."""
        _, data = self._call("POST", "/v1/orders/pay-by-code", {
            "out_trade_no": order.out_trade_no, "amount_fen": order.amount_fen,
            "currency": order.currency, "subject": order.subject,
            "notify_url": order.notify_url, "auth_code": auth_code})
        return self._status(data, order.out_trade_no)

    def reverse_order(self, out_trade_no: str) -> ChannelOrderStatus:
        """Undo a charge: a waiting order closes, a paid one is refunded in full; safe to
        repeat after a lost answer."""
        _, data = self._call("POST", f"/v1/orders/{quote(out_trade_no, safe='')}/reverse", {})
        return self._status(data, out_trade_no)

    def refund(self, out_trade_no: str, out_refund_no: str, amount_fen: int,
               total_fen: int, reason: str) -> ChannelRefund:
        _, data = self._call("POST", "/v1/refunds", {
            "out_trade_no": out_trade_no, "out_refund_no": out_refund_no,
            "amount_fen": amount_fen, "reason": reason})
        return _refund(data, out_trade_no, out_refund_no, amount_fen)

    def query_refund(self, out_trade_no: str, out_refund_no: str,
                     amount_fen: int) -> ChannelRefund:
        _, data = self._call("GET", f"/v1/refunds/{quote(out_refund_no, safe='')}")
        if data.get("out_trade_no") not in (None, out_trade_no):
            raise ChannelError("bad_response", "refund answer names another out_trade_no")
        return _refund(data, out_trade_no, out_refund_no, amount_fen)

    def statement(self, date: str) -> dict[str, Any]:
        """The platform's daily statement for ``date`` (YYYY-MM-DD)."""
        _, data = self._call("GET", f"/v1/statements/{quote(date, safe='')}")
        return data

    # -- notifications --------------------------------------------------------------------
    def parse_notification(self, headers: Mapping[str, str], body: bytes) -> ChannelNotification:
        signature = _header(headers, "X-Signature")
        if not signature or not verify(self.platform_key, body, signature):
            raise ChannelSignatureError("notification signature does not verify")
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise ChannelError("malformed_notification", "body is not JSON") from exc
        if not isinstance(data, dict) or not data.get("notify_id") or not data.get(
                "out_trade_no"):
            raise ChannelError("malformed_notification", "notify_id and out_trade_no needed")
        status = self._status(data, str(data["out_trade_no"]))
        return ChannelNotification(str(data["notify_id"]), status.out_trade_no, status.status,
                                   status.amount_fen, status.channel_txn_id, status.payer_id,
                                   status.paid_at_ms, data)

    def acknowledge(self, ok: bool) -> tuple[int, bytes, Mapping[str, str]]:
        if ok:
            return 200, b"success", {"Content-Type": "text/plain"}
        return 400, b"fail", {"Content-Type": "text/plain"}

    @staticmethod
    def _status(data: Mapping[str, Any], out_trade_no: str) -> ChannelOrderStatus:
        raw_status = data.get("status")
        if raw_status not in SANDBOX_STATUSES:
            raise ChannelError("bad_response", f"unknown platform status {raw_status!r}")
        amount = data.get("amount_fen")
        if not isinstance(amount, int) or isinstance(amount, bool):
            raise ChannelError("bad_response", "amount_fen must be an integer")
        paid_at = data.get("paid_at_ms")
        return ChannelOrderStatus(
            out_trade_no=str(data.get("out_trade_no") or out_trade_no),
            status=SANDBOX_STATUSES[raw_status], amount_fen=amount,
            channel_txn_id=data.get("channel_txn_id") or None,
            payer_id=data.get("payer_id") or None,
            paid_at_ms=paid_at if isinstance(paid_at, int) else None,
            refunded_fen=int(data.get("refunded_fen") or 0))


def _refund(data: Mapping[str, Any], out_trade_no: str, out_refund_no: str,
            amount_fen: int) -> ChannelRefund:
    status = str(data.get("status", "")).lower()
    return ChannelRefund(out_refund_no, out_trade_no, amount_fen,
                         "success" if status in {"success", "refunded"} else
                         "failed" if status == "failed" else "processing",
                         data.get("refund_id"))
