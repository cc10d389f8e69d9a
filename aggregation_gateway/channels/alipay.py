"""Alipay open API (RSA2) behind the ``PaymentChannel`` interface.

Follows Alipay's published rules:

- A request is a form of common parameters (``app_id``, ``method``, ``charset``,
  ``sign_type=RSA2``, ``timestamp``, ``version``, ``biz_content``, ...). Its signature is
  RSA-SHA256 (PKCS#1 v1.5, base64) over every parameter except ``sign`` and the empty
  ones, sorted by name and joined as ``k=v`` with ``&`` (raw values, not URL-encoded).
- An answer ``{"<method>_response": {...}, "sign": "..."}`` is signed over the exact text
  of the ``<method>_response`` object, so that text is cut out of the body, not re-encoded.
- An asynchronous notification is a form signed over every parameter except ``sign`` and
  ``sign_type``; the merchant acknowledges it with the body ``success``.

Amounts travel as yuan strings with two decimals (``"12.34"``); here they are fen.
Timestamps are Beijing time. No call leaves through anything but the ``Transport``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode
from zoneinfo import ZoneInfo

import orjson
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey

from market_protocol.money import parse_yuan

from . import rsa_signing
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

__all__ = ["AlipayChannel", "ALIPAY_STATUSES", "ALIPAY_GATEWAY_URL", "string_to_sign",
           "notification_string_to_sign", "rsa2_sign", "rsa2_verify", "response_text",
           "fen_to_yuan", "from_settings"]

ALIPAY_GATEWAY_URL = "https://openapi.alipay.com/gateway.do"
BEIJING = ZoneInfo("Asia/Shanghai")
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
#: Alipay's codes for "our system failed, the outcome is unknown".
_UNKNOWN_OUTCOMES = frozenset({"20000", "ACQ.SYSTEM_ERROR", "isp.unknow-error", "aop.unknow-error"})
SUCCESS_CODE = "10000"

#: Alipay trade_status -> normalised channel status. TRADE_CLOSED after a full refund is
#: "refunded" (see ``_status_of``); otherwise it is an unpaid order that was closed.
ALIPAY_STATUSES = {"WAIT_BUYER_PAY": "pending", "TRADE_SUCCESS": "paid",
                   "TRADE_FINISHED": "paid", "TRADE_CLOSED": "closed"}

#: Products: ``wap`` (mobile website pay, the shopper is already in a phone browser after
#: scanning) is a signed redirect, no server call; ``precreate`` asks Alipay for a QR code.
PRODUCTS = ("wap", "precreate")


def string_to_sign(params: Mapping[str, Any]) -> str:
    """Request string-to-sign: sorted ``k=v`` joined by ``&``, without ``sign`` and empties."""
    return "&".join(f"{key}={params[key]}" for key in sorted(params)
                    if key != "sign" and params[key] not in (None, ""))


def notification_string_to_sign(params: Mapping[str, str]) -> str:
    """Notification string-to-sign: as a request's, also without ``sign_type``."""
    return string_to_sign({k: v for k, v in params.items() if k != "sign_type"})


#: Alipay's name for RSA-SHA256 (PKCS#1 v1.5).
rsa2_sign = rsa_signing.sign
rsa2_verify = rsa_signing.verify


def response_text(body: str, node: str) -> str | None:
    """The exact JSON text of ``"<node>": {...}`` in ``body`` (what Alipay signed), or None.

    Scans for the matching closing brace, skipping braces inside strings.
    """
    marker = f'"{node}"'
    at = body.find(marker)
    if at < 0:
        return None
    start = body.find("{", at + len(marker))
    if start < 0 or body[at + len(marker):start].strip() != ":":
        return None
    depth, in_string, escaped = 0, False, False
    for index in range(start, len(body)):
        char = body[index]
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return body[start:index + 1]
    return None


def fen_to_yuan(amount_fen: int) -> str:
    """``1234`` -> ``"12.34"`` (Alipay's amount form)."""
    if amount_fen < 0:
        raise ValueError("amount_fen must be >= 0")
    return f"{amount_fen // 100}.{amount_fen % 100:02d}"


def _yuan_to_fen(value: Any, field: str) -> int:
    try:
        return parse_yuan(str(value))
    except (ValueError, ArithmeticError):
        raise ChannelError("bad_response", f"{field} is not a yuan amount: {value!r}") from None


def _beijing_ms(text: Any) -> int | None:
    if not text:
        return None
    try:
        moment = datetime.strptime(str(text), TIME_FORMAT).replace(tzinfo=BEIJING)
    except ValueError:
        return None
    return int(moment.timestamp() * 1000)


class AlipayChannel:
    """Alipay trade API: wap pay or precreate, query, close, refund, notifications."""

    name = "alipay"

    def __init__(self, app_id: str, app_private_key: RSAPrivateKey,
                 alipay_public_key: RSAPublicKey, transport: Transport, *,
                 gateway_url: str = ALIPAY_GATEWAY_URL, product: str = "wap",
                 seller_id: str | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        if product not in PRODUCTS:
            raise ValueError(f"product must be one of {PRODUCTS}, found {product!r}")
        self.app_id = app_id
        self.app_private_key = app_private_key
        self.alipay_public_key = alipay_public_key
        self.transport = transport
        self.gateway_url = gateway_url
        self.product = product
        self.seller_id = seller_id
        self.clock = clock

    # -- requests ---------------------------------------------------------------------

    def _timestamp(self, at: float | None = None) -> str:
        return datetime.fromtimestamp(self.clock() if at is None else at,
                                      BEIJING).strftime(TIME_FORMAT)

    def signed_params(self, method: str, biz_content: Mapping[str, Any],
                      **extra: str | None) -> dict[str, str]:
        """Common parameters plus ``biz_content`` and ``sign``, ready to send."""
        params: dict[str, str] = {
            "app_id": self.app_id, "method": method, "format": "JSON", "charset": "utf-8",
            "sign_type": "RSA2", "timestamp": self._timestamp(), "version": "1.0",
            "biz_content": orjson.dumps(dict(biz_content)).decode(),
        }
        params.update({key: value for key, value in extra.items() if value})
        params["sign"] = rsa2_sign(self.app_private_key, string_to_sign(params))
        return params

    def _call(self, method: str, biz_content: Mapping[str, Any],
              **extra: str | None) -> dict[str, Any]:
        body = urlencode(self.signed_params(method, biz_content, **extra)).encode()
        response = self.transport(HttpRequest(
            "POST", self.gateway_url,
            {"Content-Type": "application/x-www-form-urlencoded;charset=utf-8",
             "Accept": "application/json"}, body))
        return self._answer(method, response.status, response.body)

    def _answer(self, method: str, status: int, raw: bytes) -> dict[str, Any]:
        text = raw.decode("utf-8", "replace")
        node = method.replace(".", "_") + "_response"
        try:
            document = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise ChannelError("bad_response", f"{method}: HTTP {status}, not JSON") from None
        if not isinstance(document, dict):
            raise ChannelError("bad_response", f"{method}: expected a JSON object")
        if node not in document and "error_response" in document:
            node = "error_response"
        answer = document.get(node)
        signed_text = response_text(text, node)
        if not isinstance(answer, dict) or signed_text is None:
            raise ChannelError("bad_response", f"{method}: no {node} in the answer")
        signature = document.get("sign")
        if signature:
            if not rsa2_verify(self.alipay_public_key, signed_text, str(signature)):
                raise ChannelSignatureError(f"{method}: answer signature does not verify")
        elif answer.get("code") == SUCCESS_CODE:
            raise ChannelSignatureError(f"{method}: a successful answer without a signature")
        if answer.get("code") != SUCCESS_CODE:
            # an unsigned refusal is only ever treated as a failure, never acted upon; a
            # signed one is definite unless Alipay says its own system failed
            code = str(answer.get("sub_code") or answer.get("code") or "error")
            raise ChannelError(code, str(answer.get("sub_msg") or answer.get("msg") or ""),
                               definite=bool(signature) and code not in _UNKNOWN_OUTCOMES)
        return answer

    # -- PaymentChannel -----------------------------------------------------------------

    def create_order(self, order: ChannelOrder) -> ChannelOrderCreated:
        biz: dict[str, Any] = {"out_trade_no": order.out_trade_no,
                               "total_amount": fen_to_yuan(order.amount_fen),
                               "subject": order.subject[:256]}
        if order.currency != "CNY":
            raise ChannelError("unsupported_currency", f"Alipay charges CNY, not {order.currency}")
        if self.product == "wap":
            biz["product_code"] = "QUICK_WAP_WAY"
            if order.expires_at_ms:
                biz["time_expire"] = self._timestamp(order.expires_at_ms / 1000)
            params = self.signed_params("alipay.trade.wap.pay", biz,
                                        notify_url=order.notify_url,
                                        return_url=order.return_url)
            return ChannelOrderCreated(order.out_trade_no, order.out_trade_no,
                                       f"{self.gateway_url}?{urlencode(params)}")
        if order.expires_at_ms:
            minutes = max(1, int((order.expires_at_ms / 1000 - self.clock()) // 60))
            biz["timeout_express"] = f"{minutes}m"
        answer = self._call("alipay.trade.precreate", biz, notify_url=order.notify_url)
        if answer.get("out_trade_no") != order.out_trade_no or not answer.get("qr_code"):
            raise ChannelError("bad_response", "precreate answer lacks this order's qr_code")
        return ChannelOrderCreated(order.out_trade_no, order.out_trade_no,
                                   str(answer["qr_code"]))

    def query_order(self, out_trade_no: str) -> ChannelOrderStatus:
        """Raises ChannelError ``ACQ.TRADE_NOT_EXIST`` while a wap shopper has not opened
        the cashier yet: Alipay creates the trade only then; treat it as still pending."""
        answer = self._call("alipay.trade.query", {"out_trade_no": out_trade_no})
        return self._status_of(answer, out_trade_no, "send_pay_date")

    def close_order(self, out_trade_no: str) -> None:
        """Close; a trade Alipay never created (shopper never opened it) counts as closed."""
        try:
            self._call("alipay.trade.close", {"out_trade_no": out_trade_no})
        except ChannelSignatureError:
            raise
        except ChannelError as exc:
            if exc.code != "ACQ.TRADE_NOT_EXIST":
                raise

    def refund(self, out_trade_no: str, out_refund_no: str, amount_fen: int,
               total_fen: int, reason: str) -> ChannelRefund:
        """``out_refund_no`` is Alipay's ``out_request_no``: repeating it is idempotent."""
        answer = self._call("alipay.trade.refund", {
            "out_trade_no": out_trade_no, "refund_amount": fen_to_yuan(amount_fen),
            "out_request_no": out_refund_no, "refund_reason": reason[:256]})
        return ChannelRefund(out_refund_no, out_trade_no, amount_fen, "success",
                             str(answer.get("trade_no") or "") or None)

    def query_refund(self, out_trade_no: str, out_refund_no: str,
                     amount_fen: int) -> ChannelRefund:
        """``alipay.trade.fastpay.refund.query``: an answer without ``refund_amount`` means
        Alipay holds no refund under this ``out_request_no``."""
        answer = self._call("alipay.trade.fastpay.refund.query", {
            "out_trade_no": out_trade_no, "out_request_no": out_refund_no,
            "query_options": ["refund_detail_item_list"]})
        if not answer.get("refund_amount") and answer.get("refund_status") != "REFUND_SUCCESS":
            raise ChannelError("unknown_refund", f"no refund {out_refund_no} at Alipay",
                               definite=True)
        return ChannelRefund(out_refund_no, out_trade_no, amount_fen, "success",
                             str(answer.get("trade_no") or "") or None)

    def parse_notification(self, headers: Mapping[str, str], body: bytes) -> ChannelNotification:
        try:
            params = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True,
                                    strict_parsing=bool(body)))
        except (UnicodeDecodeError, ValueError):
            raise ChannelError("malformed_notification", "body is not a utf-8 form") from None
        signature = params.get("sign")
        if not signature or params.get("sign_type", "RSA2") != "RSA2" or not rsa2_verify(
                self.alipay_public_key, notification_string_to_sign(params), signature):
            raise ChannelSignatureError("notification signature does not verify")
        if params.get("app_id") != self.app_id:
            raise ChannelError("wrong_app", f"notification for app {params.get('app_id')!r}")
        if self.seller_id and params.get("seller_id") not in (None, self.seller_id):
            raise ChannelError("wrong_seller", "notification for another seller")
        if not params.get("notify_id") or not params.get("out_trade_no"):
            raise ChannelError("malformed_notification", "notify_id and out_trade_no needed")
        status = self._status_of(params, params["out_trade_no"], "gmt_payment")
        return ChannelNotification(params["notify_id"], status.out_trade_no, status.status,
                                   status.amount_fen, status.channel_txn_id, status.payer_id,
                                   status.paid_at_ms, params)

    def acknowledge(self, ok: bool) -> tuple[int, bytes, Mapping[str, str]]:
        """Alipay stops retrying only on the body ``success``."""
        return 200, b"success" if ok else b"fail", {"Content-Type": "text/plain"}

    # -- mapping --------------------------------------------------------------------------

    @staticmethod
    def _status_of(data: Mapping[str, Any], out_trade_no: str,
                   paid_field: str) -> ChannelOrderStatus:
        trade_status = data.get("trade_status")
        if trade_status not in ALIPAY_STATUSES:
            raise ChannelError("bad_response", f"unknown trade_status {trade_status!r}")
        amount = _yuan_to_fen(data.get("total_amount"), "total_amount")
        refunded = _yuan_to_fen(data["refund_fee"], "refund_fee") if data.get(
            "refund_fee") else 0
        status = ALIPAY_STATUSES[trade_status]
        if trade_status == "TRADE_CLOSED" and refunded > 0:
            status = "refunded"
        return ChannelOrderStatus(
            out_trade_no=str(data.get("out_trade_no") or out_trade_no), status=status,
            amount_fen=amount, channel_txn_id=str(data.get("trade_no") or "") or None,
            payer_id=str(data.get("buyer_id") or data.get("buyer_open_id")
                         or data.get("buyer_logon_id") or "") or None,
            paid_at_ms=_beijing_ms(data.get(paid_field)) if status != "pending" else None,
            refunded_fen=refunded)


def from_settings(settings: Mapping[str, Any], transport: Transport) -> AlipayChannel:
    """Build from the gateway's settings (``alipay_*``; key settings are PEM file paths)."""
    return AlipayChannel(
        settings["alipay_app_id"], rsa_signing.load_private_key(settings["alipay_private_key"]),
        rsa_signing.load_public_key(settings["alipay_public_key"]), transport,
        gateway_url=settings.get("alipay_gateway_url") or ALIPAY_GATEWAY_URL,
        product=settings.get("alipay_product") or "wap",
        seller_id=settings.get("alipay_seller_id") or None)
