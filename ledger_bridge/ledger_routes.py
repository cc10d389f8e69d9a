"""The bridge's own routes: health, its OpenAPI document, trades in over HTTP, and the
ledger's head, blocks, keys, proofs and consistency proofs."""

from __future__ import annotations

from flask import Blueprint, jsonify, request
from flask.typing import ResponseReturnValue

from market_protocol.http_errors import ApiError

from .bridge_context import bridge
from .http_input import int_arg, object_body
from .openapi import openapi_document

__all__ = ["blueprint"]

blueprint = Blueprint("ledger", __name__)


# health and description --------------------------------------------------------------
@blueprint.get("/healthz")
def healthz() -> ResponseReturnValue:
    ctx = bridge()
    try:
        head = ctx.ledger.head()
    except Exception:  # jetstream ordering, no node reachable: intake still works
        if getattr(ctx.service, "ordering", "solo") != "jetstream":
            raise
        head = {"height": None, "trades": None}
    return jsonify({"status": "ok", "service": "bridge", **ctx.store.counts(),
                    "ledger_height": head["height"], "ledger_entries": head["trades"],
                    **ctx.service.health()})


@blueprint.get("/openapi.json")
def openapi() -> ResponseReturnValue:
    return jsonify(openapi_document())


# trades in ---------------------------------------------------------------------------
@blueprint.post("/v1/trades")
def post_trade() -> ResponseReturnValue:
    ctx = bridge()
    if not ctx.service.check_trades(request.headers.get("Authorization")):
        raise ApiError(401, "unauthorized", "send 'Authorization: Bearer <trades token>'")
    trade = object_body()
    result = ctx.write(lambda intake: intake.trade(trade))
    if result.status == "rejected":
        verdict = result.verdict
        status = 400 if verdict and verdict.code == "malformed_trade" else 422
        raise ApiError(status, verdict.code if verdict else "rejected",
                       verdict.reason if verdict else "rejected",
                       trade_id=result.trade_id, outcome="rejected",
                       record_id=result.record_id)
    return jsonify(result.to_dict())


# ctx.ledger ------------------------------------------------------------------------------
@blueprint.get("/v1/head")
def head() -> ResponseReturnValue:
    ctx = bridge()
    value = ctx.ledger.head()
    return jsonify({"height": value["height"], "block_hash": value["block_hash"],
                    "trades": ctx.store.counts()["trades"], "entries": value["trades"],
                    "ledger_root": value.get("ledger_root")})


@blueprint.get("/v1/blocks/<int:height>")
def block(height: int) -> ResponseReturnValue:
    found = bridge().ledger.block(height)
    if found is None:
        raise ApiError(404, "unknown_block", f"there is no block {height}")
    return jsonify(found)


@blueprint.get("/v1/keys")
def keys() -> ResponseReturnValue:
    ctx = bridge()
    from market_protocol.signing import public_key_pem, public_key_raw_b64

    return jsonify({"keys": ctx.ledger.public_keys(),
                    "gateway_public_key_pem": public_key_pem(ctx.service.gateway_key),
                    "gateway_public_key_raw": public_key_raw_b64(ctx.service.gateway_key)})


@blueprint.get("/v1/proofs/<path:record_id>")
def proof(record_id: str) -> ResponseReturnValue:
    ctx = bridge()
    if len(record_id) > 128:
        raise ApiError(400, "bad_record_id", "record ids are at most 128 characters")
    stored = ctx.ledger.get(record_id)
    if stored is None or stored.kind not in ("trade", "allocation", "rapid_test", "device"):
        raise ApiError(404, "unknown_record", f"no public record {record_id!r}")
    return jsonify(ctx.ledger.proof(record_id))


@blueprint.get("/v1/consistency")
def consistency() -> ResponseReturnValue:
    ctx = bridge()
    height = ctx.ledger.head()["height"]
    if height < 1:
        raise ApiError(409, "empty_ledger", "the ctx.ledger has no blocks yet")
    new = int_arg("new", height, 1, height)
    old = int_arg("old", 1, 1, new)
    return jsonify({"old": old, "new": new, "old_root": ctx.ledger.ledger_root(old),
                    "new_root": ctx.ledger.ledger_root(new),
                    "proof": ctx.ledger.consistency(old, new)})
