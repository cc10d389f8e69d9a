"""The node's read API (HTTP JSON): its head, blocks, traces, records, proofs, refusals and
its public key. Read-only; errors are ``{"error", "message"}`` with a 4xx."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask, jsonify, request
from flask.typing import ResponseReturnValue

from market_protocol.http_errors import ApiError, install_json_errors
from market_protocol.signing import public_key_raw_b64

from ..cosigned import DEFAULT_ORIGIN
from . import reads
from .chain import NodeChain
from .checkpoints import install_checkpoint_routes

__all__ = ["create_app"]

_MAX_KEY = 256


def _int_arg(name: str) -> int:
    value = request.args.get(name, "")
    if not value.isdigit():
        raise ApiError(400, "bad_request", f"{name} must be a non-negative integer")
    return int(value)


def create_app(chain: NodeChain, status: Callable[[], dict[str, Any]] | None = None,
               origin: str = DEFAULT_ORIGIN) -> Flask:
    """``status`` adds the follower's state to ``/healthz``; ``origin`` names the log in
    the node's checkpoints (:mod:`.checkpoints`)."""
    app = Flask(__name__)
    app.config.update(JSON_SORT_KEYS=False)
    # Flask types app.json as the JSONProvider base; its DefaultJSONProvider has the flag
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    install_json_errors(app)

    def found(value: Any, what: str) -> Any:
        if value is None:
            raise ApiError(404, "not_found", f"no {what} on this node")
        return jsonify(value)

    @app.get("/healthz")
    def healthz() -> ResponseReturnValue:
        return jsonify({"ok": True, "org": chain.org, "stream_seq": chain.stream_seq,
                        **(status() if status else {})})

    @app.get("/v1/head")
    def head() -> ResponseReturnValue:
        return jsonify(chain.head())

    @app.get("/v1/blocks/<int:height>")
    def block(height: int) -> ResponseReturnValue:
        return found(reads.block(chain, height), f"block {height}")

    @app.get("/v1/locate")
    def locate() -> ResponseReturnValue:
        key = request.args.get("key", "")
        if not 0 < len(key) <= _MAX_KEY:
            raise ApiError(400, "bad_request", f"key must be 1-{_MAX_KEY} characters")
        return jsonify({"key": key, "locations": reads.locate(chain, key)})

    @app.get("/v1/records/<path:record_id>")
    def record(record_id: str) -> ResponseReturnValue:
        return found(reads.get(chain, record_id), f"record {record_id}")

    @app.get("/v1/proofs/<path:record_id>")
    def proof(record_id: str) -> ResponseReturnValue:
        return found(reads.proof(chain, record_id), f"record {record_id}")

    @app.get("/v1/consistency")
    def consistency() -> ResponseReturnValue:
        old, new = _int_arg("old"), _int_arg("new")
        try:
            path = reads.consistency(chain, old, new)
        except ValueError as exc:
            raise ApiError(400, "bad_range", str(exc)) from exc
        return jsonify({"old": old, "new": new, "proof": path,
                        "old_root": reads.ledger_root(chain, old),
                        "new_root": reads.ledger_root(chain, new)})

    @app.get("/v1/refused")
    def refused() -> ResponseReturnValue:
        after = _int_arg("after") if "after" in request.args else 0
        return jsonify({"org": chain.org, "refused": chain.history.refused(after, 1000)})

    @app.get("/v1/keys")
    def keys() -> ResponseReturnValue:
        return jsonify({chain.org: public_key_raw_b64(chain.key)})

    install_checkpoint_routes(app, chain, origin)
    return app
