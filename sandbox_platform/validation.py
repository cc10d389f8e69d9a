"""What a well-formed request to the platform looks like (pure checks, clear reasons)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from market_protocol.schema import Field, SchemaError, check

__all__ = ["ORDER_REQUEST", "REFUND_REQUEST", "APP_REQUEST", "PAY_BY_CODE_REQUEST",
           "PAYER_CODE_REQUEST", "check_order_request", "check_pay_by_code_request",
           "check_refund_request", "check_app_request", "PAYER_ID_PATTERN", "ID_PATTERN"]

ID_PATTERN = r"[A-Za-z0-9_.\-]{1,64}"
PAYER_ID_PATTERN = r"[A-Za-z0-9_.@\-]{1,64}"
#: 100 million yuan: far above any wet-market sale, low enough to catch unit mistakes.
MAX_AMOUNT_FEN = 10_000_000_000


def _http_url(value: str) -> str | None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an absolute http(s) URL"
    return None


ORDER_REQUEST = {
    "out_trade_no": Field(str, pattern=ID_PATTERN),
    "amount_fen": Field(int, minimum=1, maximum=MAX_AMOUNT_FEN),
    "currency": Field(str, pattern=r"[A-Z]{3}"),
    "subject": Field(str, max_length=256, pattern=r"(?s).*\S.*"),
    "notify_url": Field(str, max_length=2048, predicate=_http_url),
    "return_url": Field(str, max_length=2048, predicate=_http_url),
    "expires_at_ms": Field(int, required=False, nullable=True, minimum=0),
    "payer_app": Field(str, required=False, nullable=True, max_length=64),
}

#: Pay-by-code: as an order, with the scanned code instead of a checkout page (no return URL).
PAY_BY_CODE_REQUEST = {
    **{name: field for name, field in ORDER_REQUEST.items()
       if name not in ("return_url", "expires_at_ms", "payer_app")},
    "auth_code": Field(str, pattern=r"[0-9]{16,24}"),
}

PAYER_CODE_REQUEST = {
    "payer_id": Field(str, pattern=PAYER_ID_PATTERN),
    "behaviour": Field(str, required=False, nullable=True,
                       pattern=r"pay|password|decline|insufficient"),
}

REFUND_REQUEST = {
    "out_trade_no": Field(str, pattern=ID_PATTERN),
    "out_refund_no": Field(str, pattern=ID_PATTERN),
    "amount_fen": Field(int, minimum=1, maximum=MAX_AMOUNT_FEN),
    "reason": Field(str, required=False, nullable=True, max_length=256),
}

APP_REQUEST = {
    "app_id": Field(str, pattern=ID_PATTERN),
    "public_key_pem": Field(str, max_length=4096, pattern=r"(?s)\s*-----BEGIN PUBLIC KEY-----.*"),
    "merchant_name": Field(str, required=False, nullable=True, max_length=128),
}


def check_order_request(body: Any, allowed_hosts: tuple[str, ...],
                        now_ms: int | None = None) -> dict[str, Any]:
    """Raise SchemaError naming the field; notify_url must stay on an allowed host and an
    explicit expiry must lie in the future (when ``now_ms`` is given)."""
    check(ORDER_REQUEST, body)
    expires = body.get("expires_at_ms")
    if expires is not None and now_ms is not None and expires <= now_ms:
        raise SchemaError("$.expires_at_ms", f"{expires} is not in the future (now {now_ms})")
    return _notify_host_allowed(body, allowed_hosts)


def check_pay_by_code_request(body: Any, allowed_hosts: tuple[str, ...]) -> dict[str, Any]:
    check(PAY_BY_CODE_REQUEST, body)
    return _notify_host_allowed(body, allowed_hosts)


def _notify_host_allowed(body: dict[str, Any], allowed_hosts: tuple[str, ...]
                         ) -> dict[str, Any]:
    host = urlsplit(body["notify_url"]).hostname
    if host not in allowed_hosts:
        raise SchemaError("$.notify_url", f"host {host!r} is not one of the allowed notify "
                          f"hosts ({', '.join(allowed_hosts)})")
    return body


def check_refund_request(body: Any) -> dict[str, Any]:
    return check(REFUND_REQUEST, body)


def check_app_request(body: Any) -> dict[str, Any]:
    return check(APP_REQUEST, body)
