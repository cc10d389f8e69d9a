"""The Flask app factory of the sandbox payment platform."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask, jsonify
from flask.typing import ResponseReturnValue

from market_protocol import signing
from market_protocol.http_errors import install_json_errors

from . import api, checkout, payer_code_api
from .faults import FaultBoard
from .openapi import openapi_document
from .request_auth import sign_v1_answers
from .settings import SETTINGS, resolve_settings
from .state import PlatformState
from .store import Store

__all__ = ["create_app", "open_state", "DB_FILE", "KEY_FILE"]

DB_FILE = "sandbox_platform.sqlite"
KEY_FILE = "platform_key.pem"


def _complete(settings: Mapping[str, Any] | None) -> dict[str, Any]:
    """Accept either fully resolved settings or a few overrides of the defaults."""
    settings = dict(settings or {})
    if set(settings) >= {item.name for item in SETTINGS}:
        return settings
    return resolve_settings(settings)


def open_state(settings: Mapping[str, Any] | None = None) -> PlatformState:
    """Open (creating on first use) the data directory: SQLite file and Ed25519 key."""
    resolved = _complete(settings)
    data_dir = Path(resolved["data_dir"])
    data_dir.mkdir(parents=True, exist_ok=True)
    return PlatformState(settings=resolved, store=Store(data_dir / DB_FILE),
                         key=signing.load_or_create_private_key(data_dir / KEY_FILE),
                         faults=FaultBoard() if resolved["allow_faults"] else None)


def create_app(settings: Mapping[str, Any] | None = None) -> Flask:
    """Build the platform app. The notifier is NOT started here (see ``notifier.py``)."""
    state = open_state(settings)
    app = Flask(__name__)
    app.extensions["sandbox_platform"] = state
    app.config["MAX_CONTENT_LENGTH"] = 64 * 1024
    install_json_errors(app)
    app.register_blueprint(api.blueprint)
    app.register_blueprint(checkout.blueprint)
    app.register_blueprint(payer_code_api.blueprint)
    app.after_request(lambda response: sign_v1_answers(state.key, response))

    @app.get("/healthz")
    def healthz() -> ResponseReturnValue:
        return jsonify({"status": "ok", "service": "sandbox-platform",
                        "platform_public_key_raw": signing.public_key_raw_b64(state.key)})

    @app.get("/openapi.json")
    def openapi() -> ResponseReturnValue:
        return jsonify(openapi_document())

    return app
