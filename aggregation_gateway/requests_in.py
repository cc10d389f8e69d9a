"""Reading HTTP input strictly: JSON objects, manager credentials, the caller's address."""

from __future__ import annotations

from typing import Any

import orjson
from flask import current_app, request

from market_protocol import ApiError

from .manager_accounts import verify_manager
from .wiring import Gateway

__all__ = ["gateway", "json_object", "require_manager", "client_key", "rate_limit",
           "check_manager_login"]


def gateway() -> Gateway:
    return current_app.extensions["gateway"]


def json_object() -> dict[str, Any]:
    """The request body as a JSON object, or a 400/415 that says what is wrong."""
    if not request.mimetype or request.mimetype != "application/json":
        raise ApiError(415, "unsupported_media_type", "send Content-Type: application/json")
    try:
        body = orjson.loads(request.get_data(cache=True))
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, "malformed_json", f"body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_request", "expected a JSON object")
    return _integral(body)


def _integral(value: Any) -> Any:
    """JSON does not tell ``1.0`` from ``1``: a whole number written with a fraction is
    that integer. Any other float stays a float, and the schema refuses it (money is
    integer fen)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _integral(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_integral(item) for item in value]
    return value


_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def refuse_cross_site_writes() -> None:
    """A browser sends cached Basic credentials with any cross-site form post, so a page
    elsewhere could revoke terminals in the manager's name. Browsers mark every such
    request (``Origin``, ``Sec-Fetch-Site``); scripts and the CLI send neither. A write
    from another origin is refused before the credentials are even looked at."""
    if request.method in _SAFE_METHODS:
        return
    own = gateway().settings["public_url"].rstrip("/")
    origin = request.headers.get("Origin")
    if origin is not None and origin.rstrip("/") not in (own, request.host_url.rstrip("/")):
        raise ApiError(403, "cross_origin", f"a write from origin {origin[:100]!r} is "
                       f"refused: the manager API accepts writes only from {own}")
    if request.headers.get("Sec-Fetch-Site") == "cross-site":
        raise ApiError(403, "cross_origin", "a cross-site write is refused")


def require_manager() -> str:
    """HTTP Basic as a manager; returns the user name or answers 401 (403 for a write
    another site's page made the browser send)."""
    refuse_cross_site_writes()
    auth = request.authorization
    if auth is None or auth.type != "basic" or not auth.username or auth.password is None:
        raise ApiError(401, "unauthorized", "manager credentials required (HTTP Basic)")
    if not check_manager_login(auth.username, auth.password):
        raise ApiError(401, "unauthorized", "wrong manager user name or password")
    return auth.username


def check_manager_login(username: str, password: str) -> bool:
    """Verify a manager's password; failures are counted per address and per account in
    the store every worker shares, and past a limit answered 429 without even checking
    (``GatewayLimits.before_login``: guessing is slowed, the account never locked)."""
    limits = current_app.extensions["limits"]
    limits.before_login(username, client_key())
    if verify_manager(gateway().db, username, password):
        return True
    limits.login_failed(username, client_key())
    return False


def client_key() -> str:
    """The client's address (behind a trusted proxy, the one it forwarded)."""
    return request.remote_addr or "unknown"


def rate_limit(name: str) -> None:
    """Count this request against limit ``name`` for the client's address (429 when spent)."""
    current_app.extensions["limits"].hit(name, client_key())
