"""Who sent a request, and the platform's signature on what it answers.

A merchant app signs every ``/v1`` request with its Ed25519 key. ``X-Signature`` covers
``METHOD \\n PATH[?QUERY] \\n X-Timestamp \\n X-Nonce \\n BODY`` (docs/protocol.md §5): the
method and target bind a body-less request (a close, a query) to the one order it names,
and the timestamp and nonce make every signature usable once, within ±300 s of its
making. The nonce is remembered in the platform's database, so every worker process sees
it. The platform signs every ``/v1`` answer (errors included) and every notification over
the raw body with its own key, so the merchant can trust what it acts on.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from flask import Response, current_app, request

from market_protocol import signing
from market_protocol.http_errors import ApiError

from .store import now_ms

__all__ = ["signed_message", "authenticate_app", "authenticate", "NonceUse", "REPLAYED",
           "signed_response", "sign_v1_answers", "app_public_key", "TIMESTAMP_WINDOW_MS"]

#: How far a request's X-Timestamp may be from the platform's clock, either way.
TIMESTAMP_WINDOW_MS = 300_000
_NONCE = re.compile(r"[A-Za-z0-9_-]{16,64}")


def signed_message(method: str, path: str, query: str, timestamp: str, nonce: str,
                   body: bytes) -> bytes:
    """The exact bytes a request's ``X-Signature`` covers. ``path`` is percent-decoded,
    ``query`` is the raw query string as sent (without ``?``)."""
    target = f"{path}?{query}" if query else path
    return f"{method.upper()}\n{target}\n{timestamp}\n{nonce}\n".encode() + body


@lru_cache(maxsize=1024)
def app_public_key(pem: str) -> Ed25519PublicKey:
    return signing.load_public_key(pem)


def _timestamp(raw: str, now: int) -> str:
    if not raw.isdigit() or len(raw) > 16:
        raise ApiError(401, "bad_timestamp", "X-Timestamp must be epoch milliseconds")
    if abs(int(raw) - now) > TIMESTAMP_WINDOW_MS:
        raise ApiError(401, "stale_timestamp", "X-Timestamp is more than 300 s from the "
                       "platform's clock; check the merchant's clock and sign afresh")
    return raw


@dataclass(frozen=True)
class NonceUse:
    """A verified request's nonce, to be recorded (once) by the store."""

    app_id: str
    nonce: str
    now_ms: int
    keep_ms: int


REPLAYED = ("replayed_nonce", "this X-Nonce was already used; every request needs a fresh "
            "nonce and signature")


def authenticate_app(*, defer_nonce: bool = False) -> dict[str, Any]:
    """The registered app that signed this Flask request, or a 401/403 saying what is
    wrong (see ``authenticate``)."""
    return authenticate(current_app.extensions["sandbox_platform"].store, request.method,
                        request.path, request.query_string.decode("latin-1"),
                        request.headers.get, request.get_data(), defer_nonce=defer_nonce)


def authenticate(store: Any, method: str, path: str, query: str,
                 header: Callable[[str], str | None], body: bytes, *,
                 defer_nonce: bool = False) -> dict[str, Any]:
    """The registered app that signed a request, or a 401/403 saying what is wrong.

    The request arrives as plain values (``header(name)`` looks a header up), so the
    order-creation lane that bypasses Flask checks exactly what every other route checks.
    With ``defer_nonce`` the nonce is not recorded here but returned as ``app["nonce_use"]``
    for the caller's own write transaction (order creation: one commit instead of two)."""
    app_id = header("X-App-Id") or ""
    signature = header("X-Signature") or ""
    nonce = header("X-Nonce") or ""
    raw_timestamp = header("X-Timestamp")
    if not app_id or not signature or not nonce or raw_timestamp is None:
        raise ApiError(401, "missing_signature", "X-App-Id, X-Timestamp, X-Nonce and "
                       "X-Signature headers are required")
    if not _NONCE.fullmatch(nonce):
        raise ApiError(401, "bad_nonce", "X-Nonce must be 16 to 64 characters of "
                       "A-Z a-z 0-9 _ -")
    now = now_ms()
    timestamp = _timestamp(raw_timestamp, now)
    app = store.app(app_id)
    if app is None:
        raise ApiError(401, "unknown_app", f"app {app_id!r} is not registered; "
                       "POST /sandbox/apps first")
    message = signed_message(method, path, query, timestamp, nonce, body)
    if not signing.verify(app_public_key(app["public_key_pem"]), message, signature):
        raise ApiError(403, "bad_signature", "X-Signature does not verify with the app's key")
    # Only a request that verifies may use up a nonce: forged ones cannot block real ones.
    use = NonceUse(app_id, nonce, now, 2 * TIMESTAMP_WINDOW_MS)
    if defer_nonce:
        return {**app, "nonce_use": use}
    if not store.use_nonce(use):
        raise ApiError(401, *REPLAYED)
    return app


def signed_response(key: Ed25519PrivateKey, body: bytes, status: int = 200,
                    mimetype: str = "application/json") -> Response:
    response = Response(body, status=status, mimetype=mimetype)
    response.headers["X-Signature"] = signing.sign(key, body)
    return response


def sign_v1_answers(key: Ed25519PrivateKey, response: Response) -> Response:
    """``after_request``: sign every ``/v1`` answer not yet signed (errors in particular),
    so a merchant can tell a platform refusal from a forged one."""
    if request.path.startswith("/v1/") and "X-Signature" not in response.headers \
            and not response.direct_passthrough:
        response.headers["X-Signature"] = signing.sign(key, response.get_data())
    return response
