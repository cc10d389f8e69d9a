"""WeChat Pay API v3 behind the ``PaymentChannel`` interface.

Follows WeChat Pay's published v3 rules:

- Every request carries ``Authorization: WECHATPAY2-SHA256-RSA2048 mchid="..",
  nonce_str="..",signature="..",timestamp="..",serial_no=".."``, the signature being
  RSA-SHA256 (PKCS#1 v1.5, base64) by the merchant key over
  ``METHOD\\nURL_PATH(+query)\\nTIMESTAMP\\nNONCE\\nBODY\\n`` (BODY empty for a GET).
- Every answer and notification is signed by the platform over
  ``Wechatpay-Timestamp\\nWechatpay-Nonce\\nBODY\\n`` (``Wechatpay-Signature``), by the key
  named in ``Wechatpay-Serial``; a timestamp more than five minutes off is refused too, so
  an old signed message cannot be replayed.
- A notification's ``resource`` is AEAD_AES_256_GCM ciphertext under the APIv3 key, with
  its ``nonce`` and ``associated_data``; the merchant answers 200 to stop the retries.

Amounts are fen already (``amount.total``). No call leaves through anything but the
``Transport``.
"""

from __future__ import annotations

import base64
import secrets
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

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

__all__ = ["WeChatPayChannel", "WECHATPAY_STATUSES", "WECHATPAY_BASE_URL", "AUTH_SCHEMA",
           "request_message", "response_message", "authorization_header", "decrypt_resource",
           "encrypt_resource", "sign_sha256_rsa", "verify_sha256_rsa", "from_settings"]

WECHATPAY_BASE_URL = "https://api.mch.weixin.qq.com"
AUTH_SCHEMA = "WECHATPAY2-SHA256-RSA2048"
BEIJING = ZoneInfo("Asia/Shanghai")
#: A signed answer or notification older (or newer) than this is refused.
MAX_CLOCK_SKEW_S = 300

#: WeChat Pay trade_state -> normalised channel status.
WECHATPAY_STATUSES = {"SUCCESS": "paid", "REFUND": "refunded", "NOTPAY": "pending",
                      "USERPAYING": "pending", "CLOSED": "closed", "REVOKED": "closed",
                      "PAYERROR": "failed"}
REFUND_STATUSES = {"SUCCESS": "success", "PROCESSING": "processing", "CLOSED": "failed",
                   "ABNORMAL": "failed"}
PRODUCTS = ("native", "h5")


def request_message(method: str, url_path: str, timestamp: str, nonce: str, body: str) -> str:
    """The string a request signature covers; ``url_path`` includes any query string."""
    return f"{method.upper()}\n{url_path}\n{timestamp}\n{nonce}\n{body}\n"


def response_message(timestamp: str, nonce: str, body: str) -> str:
    """The string an answer's or a notification's ``Wechatpay-Signature`` covers."""
    return f"{timestamp}\n{nonce}\n{body}\n"


def authorization_header(mch_id: str, serial_no: str, key: RSAPrivateKey, method: str,
                         url_path: str, body: str, timestamp: str, nonce: str) -> str:
    signature = sign_sha256_rsa(key, request_message(method, url_path, timestamp, nonce, body))
    return (f'{AUTH_SCHEMA} mchid="{mch_id}",nonce_str="{nonce}",signature="{signature}",'
            f'timestamp="{timestamp}",serial_no="{serial_no}"')


def decrypt_resource(api_v3_key: bytes, resource: Mapping[str, Any]) -> bytes:
    """Plaintext of a notification ``resource`` (AEAD_AES_256_GCM); ChannelSignatureError
    when the tag does not verify (wrong key, tampered ciphertext or associated data)."""
    if resource.get("algorithm") != "AEAD_AES_256_GCM":
        raise ChannelError("malformed_notification",
                           f"unsupported algorithm {resource.get('algorithm')!r}")
    try:
        return AESGCM(api_v3_key).decrypt(
            str(resource["nonce"]).encode(), base64.b64decode(str(resource["ciphertext"])),
            str(resource.get("associated_data") or "").encode() or None)
    except (KeyError, ValueError):
        raise ChannelError("malformed_notification", "resource lacks nonce or ciphertext") \
            from None
    except InvalidTag:
        raise ChannelSignatureError("notification resource does not decrypt with the APIv3 "
                                    "key") from None


def encrypt_resource(api_v3_key: bytes, plaintext: bytes, nonce: str,
                     associated_data: str) -> dict[str, str]:
    """The inverse of ``decrypt_resource``: what WeChat Pay sends (used to build fixtures)."""
    ciphertext = AESGCM(api_v3_key).encrypt(nonce.encode(), plaintext,
                                            associated_data.encode() or None)
    return {"algorithm": "AEAD_AES_256_GCM", "ciphertext": base64.b64encode(ciphertext).decode(),
            "associated_data": associated_data, "nonce": nonce}


#: WeChat Pay's name for RSA-SHA256 (PKCS#1 v1.5).
sign_sha256_rsa = rsa_signing.sign
verify_sha256_rsa = rsa_signing.verify


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    return next((value for key, value in headers.items() if key.lower() == wanted), None)


def _rfc3339_ms(text: Any) -> int | None:
    if not text:
        return None
    try:
        return int(datetime.fromisoformat(str(text)).timestamp() * 1000)
    except ValueError:
        return None


def _object(value: Any) -> dict[str, Any]:
    """A nested JSON object of an answer, or an empty one where it is missing or not one."""
    return value if isinstance(value, dict) else {}


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ChannelError("bad_response", f"{what} is not JSON") from None
    if not isinstance(value, dict):
        raise ChannelError("bad_response", f"{what} is not a JSON object")
    return value


class WeChatPayChannel:
    """WeChat Pay v3 direct merchant: Native/H5 (JSAPI via ``create_jsapi_order``)."""

    name = "wechatpay"

    def __init__(self, mch_id: str, app_id: str, merchant_private_key: RSAPrivateKey,
                 merchant_serial_no: str, api_v3_key: bytes, platform_public_key: RSAPublicKey,
                 transport: Transport, *, platform_serial_no: str | None = None,
                 base_url: str = WECHATPAY_BASE_URL, product: str = "native",
                 payer_client_ip: str = "127.0.0.1",
                 clock: Callable[[], float] = time.time,
                 nonce: Callable[[], str] = lambda: secrets.token_hex(16).upper()) -> None:
        if len(api_v3_key) != 32:
            raise ValueError("the APIv3 key is 32 bytes (AES-256)")
        if product not in PRODUCTS:
            raise ValueError(f"product must be one of {PRODUCTS}, found {product!r}")
        self.mch_id = mch_id
        self.app_id = app_id
        self.merchant_private_key = merchant_private_key
        self.merchant_serial_no = merchant_serial_no
        self.api_v3_key = api_v3_key
        self.platform_public_key = platform_public_key
        self.platform_serial_no = platform_serial_no
        self.transport = transport
        self.base_url = base_url.rstrip("/")
        self.product = product
        self.payer_client_ip = payer_client_ip
        self.clock = clock
        self.nonce = nonce

    # -- signed calls -------------------------------------------------------------------

    def _call(self, method: str, path: str, payload: Mapping[str, Any] | None = None
              ) -> tuple[int, dict[str, Any]]:
        body = orjson.dumps(dict(payload)).decode() if payload is not None else ""
        url = self.base_url + path
        split = urlsplit(url)
        url_path = split.path + (f"?{split.query}" if split.query else "")
        headers = {"Authorization": authorization_header(
            self.mch_id, self.merchant_serial_no, self.merchant_private_key, method, url_path,
            body, str(int(self.clock())), self.nonce()),
            "Accept": "application/json", "User-Agent": "tracepay-wechatpay/1"}
        if payload is not None:
            headers["Content-Type"] = "application/json"
        response = self.transport(HttpRequest(method, url, headers, body.encode()))
        signed = _header(response.headers, "Wechatpay-Signature")
        if signed is None and response.status >= 400:
            # an unsigned refusal is only ever treated as a failure, never acted upon
            code, message = _error_of(response.body)
            raise ChannelError(code or f"http_{response.status}", message)
        self.verify_signed(response.headers, response.body)
        data = _json_object(response.body, f"{method} {path} answer") if response.body else {}
        if response.status >= 400:
            code = str(data.get("code") or f"http_{response.status}")
            # signed (verified above): a 4xx is a definite refusal, a 5xx or
            # SYSTEM_ERROR leaves the outcome unknown
            raise ChannelError(code, str(data.get("message") or ""),
                               definite=400 <= response.status < 500
                               and code not in ("SYSTEM_ERROR", "FREQUENCY_LIMITED"))
        return response.status, data

    def verify_signed(self, headers: Mapping[str, str], body: bytes) -> None:
        """Raise ChannelSignatureError unless ``body`` carries a fresh platform signature."""
        timestamp = _header(headers, "Wechatpay-Timestamp")
        nonce = _header(headers, "Wechatpay-Nonce")
        signature = _header(headers, "Wechatpay-Signature")
        serial = _header(headers, "Wechatpay-Serial")
        if not (timestamp and nonce and signature and serial):
            raise ChannelSignatureError("Wechatpay-Timestamp/Nonce/Signature/Serial missing")
        if self.platform_serial_no and serial != self.platform_serial_no:
            raise ChannelSignatureError(f"signed by key {serial!r}, expected "
                                        f"{self.platform_serial_no!r}")
        if not timestamp.isdigit() or abs(self.clock() - int(timestamp)) > MAX_CLOCK_SKEW_S:
            raise ChannelSignatureError(f"Wechatpay-Timestamp {timestamp!r} is not within "
                                        f"{MAX_CLOCK_SKEW_S}s of now")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise ChannelSignatureError("body is not utf-8") from None
        if not verify_sha256_rsa(self.platform_public_key, response_message(timestamp, nonce, text),
                       signature):
            raise ChannelSignatureError("Wechatpay-Signature does not verify")

    # -- PaymentChannel -----------------------------------------------------------------

    def _order_body(self, order: ChannelOrder) -> dict[str, Any]:
        body: dict[str, Any] = {
            "appid": self.app_id, "mchid": self.mch_id, "description": order.subject[:127],
            "out_trade_no": order.out_trade_no, "notify_url": order.notify_url,
            "amount": {"total": order.amount_fen, "currency": order.currency}}
        if order.expires_at_ms:
            body["time_expire"] = datetime.fromtimestamp(
                order.expires_at_ms / 1000, BEIJING).isoformat(timespec="seconds")
        return body

    def create_order(self, order: ChannelOrder) -> ChannelOrderCreated:
        body = self._order_body(order)
        if self.product == "h5":
            body["scene_info"] = {"payer_client_ip": self.payer_client_ip,
                                  "h5_info": {"type": "Wap"}}
            _, data = self._call("POST", "/v3/pay/transactions/h5", body)
            if not data.get("h5_url"):
                raise ChannelError("bad_response", "h5 answer lacks h5_url")
            url = f"{data['h5_url']}&redirect_url={quote(order.return_url, safe='')}"
            return ChannelOrderCreated(order.out_trade_no, order.out_trade_no, url)
        _, data = self._call("POST", "/v3/pay/transactions/native", body)
        if not data.get("code_url"):
            raise ChannelError("bad_response", "native answer lacks code_url")
        return ChannelOrderCreated(order.out_trade_no, order.out_trade_no, str(data["code_url"]))

    def create_jsapi_order(self, order: ChannelOrder, openid: str) -> dict[str, str]:
        """JSAPI (inside WeChat): the prepay and the signed parameters for
        ``WeixinJSBridge.invoke('getBrandWCPayRequest', ...)`` on the payer's page."""
        body = {**self._order_body(order), "payer": {"openid": openid}}
        _, data = self._call("POST", "/v3/pay/transactions/jsapi", body)
        if not data.get("prepay_id"):
            raise ChannelError("bad_response", "jsapi answer lacks prepay_id")
        timestamp, nonce = str(int(self.clock())), self.nonce()
        package = f"prepay_id={data['prepay_id']}"
        return {"appId": self.app_id, "timeStamp": timestamp, "nonceStr": nonce,
                "package": package, "signType": "RSA",
                "paySign": sign_sha256_rsa(self.merchant_private_key,
                                 f"{self.app_id}\n{timestamp}\n{nonce}\n{package}\n")}

    def query_order(self, out_trade_no: str) -> ChannelOrderStatus:
        _, data = self._call("GET", f"/v3/pay/transactions/out-trade-no/"
                             f"{quote(out_trade_no, safe='')}?mchid={quote(self.mch_id)}")
        return self._status_of(data, out_trade_no)

    def close_order(self, out_trade_no: str) -> None:
        self._call("POST", f"/v3/pay/transactions/out-trade-no/"
                   f"{quote(out_trade_no, safe='')}/close", {"mchid": self.mch_id})

    def refund(self, out_trade_no: str, out_refund_no: str, amount_fen: int,
               total_fen: int, reason: str) -> ChannelRefund:
        payload: dict[str, Any] = {
            "out_trade_no": out_trade_no, "out_refund_no": out_refund_no,
            "amount": {"refund": amount_fen, "total": total_fen, "currency": "CNY"}}
        if reason:
            payload["reason"] = reason[:80]
        _, data = self._call("POST", "/v3/refund/domestic/refunds", payload)
        status = REFUND_STATUSES.get(str(data.get("status")), "processing")
        return ChannelRefund(out_refund_no, out_trade_no, amount_fen, status,
                             str(data.get("refund_id") or "") or None)

    def query_refund(self, out_trade_no: str, out_refund_no: str,
                     amount_fen: int) -> ChannelRefund:
        """``GET /v3/refund/domestic/refunds/{out_refund_no}``."""
        try:
            _, data = self._call("GET", "/v3/refund/domestic/refunds/"
                                 + quote(out_refund_no, safe=""))
        except ChannelError as exc:
            if exc.code == "RESOURCE_NOT_EXISTS" and exc.definite:
                raise ChannelError("unknown_refund", f"no refund {out_refund_no} at WeChat "
                                   "Pay", definite=True) from None
            raise
        status = REFUND_STATUSES.get(str(data.get("status")), "processing")
        return ChannelRefund(out_refund_no, out_trade_no, amount_fen, status,
                             str(data.get("refund_id") or "") or None)

    def parse_notification(self, headers: Mapping[str, str], body: bytes) -> ChannelNotification:
        """Verify the signature, then decrypt the resource; payment and refund events."""
        self.verify_signed(headers, body)
        envelope = _json_object(body, "notification")
        resource = envelope.get("resource")
        if not envelope.get("id") or not isinstance(resource, dict):
            raise ChannelError("malformed_notification", "id and resource needed")
        data = _json_object(decrypt_resource(self.api_v3_key, resource), "resource")
        if data.get("mchid") not in (None, self.mch_id):
            raise ChannelError("wrong_merchant", f"notification for mchid {data.get('mchid')!r}")
        if str(envelope.get("event_type", "")).startswith("REFUND."):
            status = self._refund_status_of(data)
        else:
            status = self._status_of(data, str(data.get("out_trade_no") or ""))
        return ChannelNotification(str(envelope["id"]), status.out_trade_no, status.status,
                                   status.amount_fen, status.channel_txn_id, status.payer_id,
                                   status.paid_at_ms, {**envelope, "resource": data})

    def acknowledge(self, ok: bool) -> tuple[int, bytes, Mapping[str, str]]:
        """v3 stops retrying on 200/204; a 4xx/5xx with ``code: FAIL`` asks for a retry."""
        if ok:
            return 200, b'{"code":"SUCCESS","message":"OK"}', {"Content-Type": "application/json"}
        return 500, b'{"code":"FAIL","message":"not processed"}', {
            "Content-Type": "application/json"}

    # -- mapping --------------------------------------------------------------------------

    @staticmethod
    def _status_of(data: Mapping[str, Any], out_trade_no: str) -> ChannelOrderStatus:
        state = data.get("trade_state")
        if state not in WECHATPAY_STATUSES:
            raise ChannelError("bad_response", f"unknown trade_state {state!r}")
        status = WECHATPAY_STATUSES[state]
        amount = _object(data.get("amount"))
        total = amount.get("total")
        if not isinstance(total, int) or isinstance(total, bool):
            if status in ("paid", "refunded"):
                raise ChannelError("bad_response", "amount.total must be an integer")
            total = 0
        payer = _object(data.get("payer"))
        return ChannelOrderStatus(
            out_trade_no=str(data.get("out_trade_no") or out_trade_no), status=status,
            amount_fen=total, channel_txn_id=str(data.get("transaction_id") or "") or None,
            payer_id=str(payer.get("openid") or "") or None,
            paid_at_ms=_rfc3339_ms(data.get("success_time")) if status in (
                "paid", "refunded") else None)

    @staticmethod
    def _refund_status_of(data: Mapping[str, Any]) -> ChannelOrderStatus:
        amount = _object(data.get("amount"))
        total, refund = amount.get("total"), amount.get("refund")
        if not isinstance(total, int) or not isinstance(refund, int):
            raise ChannelError("bad_response", "refund amount.total/refund must be integers")
        done = data.get("refund_status") == "SUCCESS"
        return ChannelOrderStatus(
            out_trade_no=str(data.get("out_trade_no") or ""),
            status="refunded" if done and refund == total else "paid", amount_fen=total,
            channel_txn_id=str(data.get("transaction_id") or "") or None,
            refunded_fen=refund if done else 0)


def _error_of(raw: bytes) -> tuple[str, str]:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return "", ""
    if not isinstance(data, dict):
        return "", ""
    return str(data.get("code") or ""), str(data.get("message") or "")


def from_settings(settings: Mapping[str, Any], transport: Transport) -> WeChatPayChannel:
    """Build from the gateway's settings (``wechatpay_*``; key settings are PEM file paths,
    the APIv3 key is its 32 characters)."""
    return WeChatPayChannel(
        settings["wechatpay_mch_id"], settings["wechatpay_app_id"],
        rsa_signing.load_private_key(settings["wechatpay_private_key"]), settings["wechatpay_serial_no"],
        str(settings["wechatpay_api_v3_key"]).encode(),
        rsa_signing.load_public_key(settings["wechatpay_platform_public_key"]), transport,
        platform_serial_no=settings.get("wechatpay_platform_serial_no") or None,
        base_url=settings.get("wechatpay_base_url") or WECHATPAY_BASE_URL,
        product=settings.get("wechatpay_product") or "native")
