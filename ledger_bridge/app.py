"""The bridge's HTTP API (docs/protocol.md §7, docs/bridge.md): a thin Flask shell over
``BridgeService``, its routes in blueprints (ledger, trace, admin). Writes go through the
single writer; reads go straight to the index and the ledger."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from flask import Flask, request
from flask.typing import ResponseReturnValue

from market_protocol.http_errors import install_json_errors

from . import admin_routes, ledger_routes, trace_routes
from .bridge_context import EXTENSION, BridgeContext
from .service import BridgeService

if TYPE_CHECKING:
    from .reader import ReaderService

__all__ = ["create_app"]


def create_app(service: BridgeService | ReaderService,
               test_config: Mapping[str, Any] | None = None) -> Flask:
    """The bridge's API over the writing service, or over a reader process's read-only one
    (which forwards every POST to the writer)."""
    app = Flask(__name__)
    app.config.update(JSON_SORT_KEYS=False, MAX_CONTENT_LENGTH=1 << 20)
    if test_config:
        app.config.update(test_config)
    # Flask types app.json as the JSONProvider base; its DefaultJSONProvider has the flag
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    install_json_errors(app)
    app.extensions[EXTENSION] = BridgeContext(service)
    writer_url = getattr(service, "writer_url", None)
    if writer_url:
        from .reader import forward_write

        @app.before_request
        def _writes_go_to_the_writer() -> ResponseReturnValue | None:
            if request.method == "POST":
                return forward_write(writer_url, request)
            return None

    for routes in (ledger_routes, trace_routes, admin_routes):
        app.register_blueprint(routes.blueprint)
    return app
