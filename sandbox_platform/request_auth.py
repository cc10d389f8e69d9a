"""Who sent a request, and the platform's signature on what it answers.

A merchant app signs every ``/v1`` request with its Ed25519 key: ``X-Signature`` is over
the raw body, or, when the body is empty (GET, a bare POST), over ``METHOD + "\\n" + path``
(with ``?query`` when there is one). The platform signs every ``/v1`` answer and every
notification over the raw body with its own key, so the merchant can trust what it acts on.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from flask import Response, current_app, request

from market_protocol import signing
from market_protocol.http_errors import ApiError

__all__ = ["signed_message", "authenticate_app", "signed_response", "app_public_key"]


def signed_message(method: str, path: str, query: str, body: bytes) -> bytes:
    """The exact bytes a request's ``X-Signature`` covers."""
    if body:
        return body
    target = f"{path}?{query}" if query else path
    return f"{method.upper()}\n{target}".encode()


@lru_cache(maxsize=1024)
def app_public_key(pem: str) -> Ed25519PublicKey:
    return signing.load_public_key(pem)


def authenticate_app() -> dict[str, Any]:
    """The registered app that signed this request, or a 401/403 saying what is wrong."""
    app_id = request.headers.get("X-App-Id", "")
    signature = request.headers.get("X-Signature", "")
    if not app_id or not signature:
        raise ApiError(401, "missing_signature", "X-App-Id and X-Signature headers are required")
    app = current_app.extensions["sandbox_platform"].store.app(app_id)
    if app is None:
        raise ApiError(401, "unknown_app", f"app {app_id!r} is not registered; "
                       "POST /sandbox/apps first")
    message = signed_message(request.method, request.path,
                             request.query_string.decode("latin-1"), request.get_data())
    if not signing.verify(app_public_key(app["public_key_pem"]), message, signature):
        raise ApiError(403, "bad_signature", "X-Signature does not verify with the app's key")
    return app


def signed_response(key: Ed25519PrivateKey, body: bytes, status: int = 200,
                    mimetype: str = "application/json") -> Response:
    response = Response(body, status=status, mimetype=mimetype)
    response.headers["X-Signature"] = signing.sign(key, body)
    return response
