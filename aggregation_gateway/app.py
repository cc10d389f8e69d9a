"""The gateway's Flask app factory: ``create_app(settings)``.

The app holds no background work (no MQTT, no sweeper): with several granian workers
each would run its own copy. Those run once, in ``background.Background``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask, request

from market_protocol.http_errors import install_json_errors

from .rate_limits import RateLimiter
from .scan_lane import ScanLane
from .settings import load_gateway_settings
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
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions["gateway"] = gateway
    app.extensions["scan_limiter"] = RateLimiter(gateway.settings["scan_rate_per_s"])
    app.extensions["notify_limiter"] = RateLimiter(gateway.settings["notify_rate_per_s"])
    app.extensions["login_failures"] = RateLimiter(
        gateway.settings["login_failure_rate_per_s"], burst=10)
    install_json_errors(app)

    from . import api_views, manager_web, scan_views

    app.register_blueprint(api_views.blueprint)
    app.register_blueprint(scan_views.blueprint)
    app.register_blueprint(manager_web.blueprint)

    @app.after_request
    def _headers(response):  # type: ignore[no-untyped-def]
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        if response.status_code == 401 and request.path.startswith("/v1/"):
            response.headers["WWW-Authenticate"] = 'Basic realm="tracepay gateway"'
        return response

    # JSON scans (the hot path) are answered without Flask's request machinery.
    app.wsgi_app = ScanLane(app.wsgi_app, gateway,  # type: ignore[method-assign]
                            app.extensions["scan_limiter"])
    return app
