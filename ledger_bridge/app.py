"""The bridge's HTTP API (docs/protocol.md §7, docs/bridge.md): a thin Flask shell over
``BridgeService``. Writes go through the single writer; reads go straight to the index and
the ledger."""

from __future__ import annotations

from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

from flask import Flask, jsonify, request

from market_protocol.http_errors import ApiError, install_json_errors

from .digital_link import lot_url
from .http_input import int_arg, object_body
from .openapi import openapi_document
from .service import BridgeService

__all__ = ["create_app"]


def create_app(service: BridgeService, test_config: Mapping[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    app.config.update(JSON_SORT_KEYS=False, MAX_CONTENT_LENGTH=1 << 20)
    if test_config:
        app.config.update(test_config)
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    install_json_errors(app)
    store = service.store

    class _Ledger:
        """The service's ledger as of this request (a reader service may reopen it)."""

        def __getattr__(self, name: str) -> Any:
            return getattr(service.ledger, name)

    ledger = _Ledger()
    writer_url = getattr(service, "writer_url", None)
    if writer_url:
        from .reader import forward_write

        @app.before_request
        def _writes_go_to_the_writer():  # type: ignore[no-untyped-def]
            if request.method == "POST":
                return forward_write(writer_url, request)
            return None

    def admin() -> None:
        if not service.check_admin(request.headers.get("Authorization")):
            raise ApiError(401, "unauthorized", "send 'Authorization: Bearer <admin token>'")

    def trade_or_404(code: str) -> dict[str, Any]:
        public = store.trade_by_code(code) if len(code) <= 64 else None
        if public is None:
            raise ApiError(404, "unknown_trace_code", f"no trade has trace code {code!r}")
        return public

    def lot_ids_or_404(lot: str) -> list[str]:
        lot_ids = store.lot_ids_for(lot) if len(lot) <= 64 else []
        if not lot_ids:
            raise ApiError(404, "unknown_lot", f"no lot is called {lot!r}")
        return lot_ids

    def link_for(lot_id: str, product: str) -> str:
        return lot_url(service.public_url, lot_id, service.catalogue().gtin_of(product))

    # health and description --------------------------------------------------------------
    @app.get("/healthz")
    def healthz():  # type: ignore[no-untyped-def]
        try:
            head = ledger.head()
        except Exception:  # jetstream ordering, no node reachable: intake still works
            if getattr(service, "ordering", "solo") != "jetstream":
                raise
            head = {"height": None, "trades": None}
        return jsonify({"status": "ok", "service": "bridge", **store.counts(),
                        "ledger_height": head["height"], "ledger_entries": head["trades"],
                        **service.health()})

    @app.get("/openapi.json")
    def openapi():  # type: ignore[no-untyped-def]
        return jsonify(openapi_document())

    # trades in ---------------------------------------------------------------------------
    @app.post("/v1/trades")
    def post_trade():  # type: ignore[no-untyped-def]
        if not service.check_trades(request.headers.get("Authorization")):
            raise ApiError(401, "unauthorized", "send 'Authorization: Bearer <trades token>'")
        trade = object_body()
        result = service.writer.call(lambda: service.intake.trade(trade))
        if result.status == "rejected":
            verdict = result.verdict
            status = 400 if verdict and verdict.code == "malformed_trade" else 422
            raise ApiError(status, verdict.code if verdict else "rejected",
                           verdict.reason if verdict else "rejected",
                           trade_id=result.trade_id, outcome="rejected",
                           record_id=result.record_id)
        return jsonify(result.to_dict())

    # ledger ------------------------------------------------------------------------------
    @app.get("/v1/head")
    def head():  # type: ignore[no-untyped-def]
        value = ledger.head()
        return jsonify({"height": value["height"], "block_hash": value["block_hash"],
                        "trades": store.counts()["trades"], "entries": value["trades"],
                        "ledger_root": value.get("ledger_root")})

    @app.get("/v1/blocks/<int:height>")
    def block(height: int):  # type: ignore[no-untyped-def]
        found = ledger.block(height)
        if found is None:
            raise ApiError(404, "unknown_block", f"there is no block {height}")
        return jsonify(found)

    @app.get("/v1/keys")
    def keys():  # type: ignore[no-untyped-def]
        from market_protocol.signing import public_key_pem, public_key_raw_b64

        return jsonify({"keys": ledger.public_keys(),
                        "gateway_public_key_pem": public_key_pem(service.gateway_key),
                        "gateway_public_key_raw": public_key_raw_b64(service.gateway_key)})

    @app.get("/v1/proofs/<path:record_id>")
    def proof(record_id: str):  # type: ignore[no-untyped-def]
        if len(record_id) > 128:
            raise ApiError(400, "bad_record_id", "record ids are at most 128 characters")
        stored = ledger.get(record_id)
        if stored is None or stored.kind not in ("trade", "allocation", "rapid_test", "device"):
            raise ApiError(404, "unknown_record", f"no public record {record_id!r}")
        return jsonify(ledger.proof(record_id))

    @app.get("/v1/consistency")
    def consistency():  # type: ignore[no-untyped-def]
        height = ledger.head()["height"]
        if height < 1:
            raise ApiError(409, "empty_ledger", "the ledger has no blocks yet")
        new = int_arg("new", height, 1, height)
        old = int_arg("old", 1, 1, new)
        return jsonify({"old": old, "new": new, "old_root": ledger.ledger_root(old),
                        "new_root": ledger.ledger_root(new),
                        "proof": ledger.consistency(old, new)})

    from . import admin_routes, trace_routes

    api = SimpleNamespace(service=service, store=store, ledger=ledger, admin=admin,
                          trade_or_404=trade_or_404, lot_ids_or_404=lot_ids_or_404,
                          link_for=link_for)
    trace_routes.init_app(app, api)
    admin_routes.init_app(app, api)
    return app
