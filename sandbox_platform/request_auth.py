"""Who sent a request, and the platform's signature on what it answers.

A merchant app signs every ``/v1`` request with its Ed25519 key: ``X-Signature`` is over
the raw body, or, when the body is empty (GET, a bare POST), over ``METHOD + "\\n" + path``
(with ``?query`` when there is one). The bare path alone is accepted too for an empty body,
because docs/protocol.md §5 words it that way ("over the path for GET"); neither form can be
mistaken for a JSON body. The platform signs every ``/v1`` answer (errors included) and
every notification over the raw body with its own key, so the merchant can trust what it
acts on.
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

__all__ = ["signed_message", "signed_messages", "authenticate_app", "signed_response",
           "sign_v1_answers", "app_public_key"]


def signed_message(method: str, path: str, query: str, body: bytes) -> bytes:
    """The exact bytes a request's ``X-Signature`` covers (the preferred form)."""
    return signed_messages(method, path, query, body)[0]


def signed_messages(method: str, path: str, query: str, body: bytes) -> tuple[bytes, ...]:
    """Every form a request's ``X-Signature`` may cover: the body, else method and path."""
    if body:
        return (body,)
    target = f"{path}?{query}" if query else path
    return f"{method.upper()}\n{target}".encode(), target.encode()


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
    messages = signed_messages(request.method, request.path,
                               request.query_string.decode("latin-1"), request.get_data())
    key = app_public_key(app["public_key_pem"])
    if not any(signing.verify(key, message, signature) for message in messages):
        raise ApiError(403, "bad_signature", "X-Signature does not verify with the app's key")
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
