"""The gateway's Flask app factory: ``create_app(settings)``.

The app holds no background work (no MQTT, no sweeper): with several granian workers
each would run its own copy. Those run once, in ``background.Background``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from flask import Flask, request
from flask_wtf.csrf import CSRFError, CSRFProtect

from market_protocol import ApiError
from market_protocol.http_errors import install_json_errors

from .rate_limits import GatewayLimits
from .settings import load_gateway_settings
from .trusted_proxies import TrustedProxies, parse_networks
from .wiring import Gateway, build_gateway

__all__ = ["create_app"]


def create_app(settings: Mapping[str, Any] | None = None,
               gateway: Gateway | None = None) -> Flask:
    """Build the WSGI app. ``settings`` are resolved settings (``load_gateway_settings``);
    pass ``gateway`` to share already-built parts (tests)."""
    if gateway is None:
        gateway = build_gateway(settings if settings is not None else load_gateway_settings())
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = 256 * 1024
    app.config["TRACEPAY_INSECURE_DEMO"] = bool(gateway.settings.get("insecure_demo"))
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions["gateway"] = gateway
    app.extensions["limits"] = GatewayLimits(gateway.settings)
    install_json_errors(app)
    _protect_forms(app, gateway)

    from . import api_views, manager_web, scan_views

    app.register_blueprint(api_views.blueprint)
    app.register_blueprint(scan_views.blueprint)
    app.register_blueprint(manager_web.blueprint)
    # The JSON API's writes are authenticated per request (Basic with an Origin check,
    # device MACs, platform signatures), never by a cookie: no form token to carry.
    csrf: CSRFProtect = app.extensions["csrf"]
    csrf.exempt(api_views.blueprint)
    csrf.exempt(scan_views.blueprint)

    @app.after_request
    def _headers(response):  # type: ignore[no-untyped-def]
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        if response.status_code == 429 and "Retry-After" not in response.headers:
            retry = (response.get_json(silent=True) or {}).get("retry_after_s")
            response.headers["Retry-After"] = str(retry or 1)
        if response.status_code == 401 and request.path.startswith("/v1/"):
            response.headers["WWW-Authenticate"] = 'Basic realm="tracepay gateway"'
        return response

    # Outermost: the client address every limit sees is settled before anything else runs.
    app.wsgi_app = TrustedProxies(  # type: ignore[method-assign]
        app.wsgi_app, parse_networks(gateway.settings.get("trusted_proxies", "")),
        hops=max(1, int(gateway.settings.get("proxy_hops", 1))))
    return app


def _protect_forms(app: Flask, gateway: Gateway) -> None:
    """Flask-WTF's CSRF tokens on every HTML form (the login form too). The signing key is
    derived from the master key, so every worker and every restart accepts the same
    tokens; the token lives in Flask's signed session cookie (SameSite=Strict)."""
    settings = gateway.settings
    app.secret_key = hmac.new(gateway.registry.master_key, b"tracepay web forms/1",
                              hashlib.sha256).hexdigest()
    app.config.update(
        SESSION_COOKIE_NAME="tracepay_forms", SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SECURE=settings["public_url"].startswith("https://"),
        WTF_CSRF_TIME_LIMIT=settings["session_lifetime_s"])
    CSRFProtect(app)

    @app.errorhandler(CSRFError)
    def _csrf_failed(exc: CSRFError) -> tuple[dict[str, Any], int]:
        error = ApiError(403, "csrf_failed", f"{exc.description} Reload the page and try "
                         f"again.")
        return {"error": error.code, "message": error.message}, error.status
