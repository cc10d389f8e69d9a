"""The bridge's OpenAPI 3.1 document, built from one table of its operations."""

from __future__ import annotations

from typing import Any

__all__ = ["openapi_document", "OPERATIONS"]

_ERROR = {"type": "object", "required": ["error", "message"],
          "properties": {"error": {"type": "string"}, "message": {"type": "string"}}}

#: (method, path, summary, success status, error statuses)
OPERATIONS: tuple[tuple[str, str, str, str, tuple[str, ...]], ...] = (
    ("get", "/healthz", "Liveness and counts (trades, rejected, lots, tests, ledger height).",
     "200", ()),
    ("get", "/openapi.json", "This document.", "200", ()),
    ("post", "/v1/trades", "Accept a tracepay.trade/1 (Node-RED, back-fill); idempotent on "
     "trade_id: status accepted or duplicate. A trade failing the contract is recorded as "
     "rejected and answered 400/422 with the reason.", "200", ("400", "422")),
    ("get", "/v1/trace/{code}", "Public view of a trade, its upstream chain with quantities, "
     "rapid tests, recalls and inclusion proofs.", "200", ("404",)),
    ("get", "/v1/head", "Height, hash and counts of the ledger.", "200", ()),
    ("get", "/v1/blocks/{height}", "Header, signatures and leaf hashes of a block.", "200",
     ("404",)),
    ("get", "/v1/keys", "Ed25519 public keys of the orderer and each node (raw, base64url) "
     "and the gateway key trades are checked with.", "200", ()),
    ("get", "/v1/proofs/{record_id}", "Inclusion proof of a public record.", "200",
     ("400", "404")),
    ("get", "/v1/consistency", "RFC 6962 consistency proof between ledger sizes old and new "
     "(in blocks).", "200", ("400", "409")),
    ("get", "/v1/lots/{lot}", "A lot (id or printed label): upstream chain, every "
     "downstream sale with quantities, what is left, rapid tests.", "200", ("404",)),
    ("get", "/v1/lots/{lot}/recall.csv", "Recall list of a lot as CSV; ?sort=<column>.",
     "200", ("400", "404")),
    ("post", "/v1/lots/{lot}/tests", "Record an inspector's rapid test (pass/fail, values).",
     "201", ("400", "401", "404", "422")),
    ("get", "/01/{gtin}/10/{lot}", "GS1 Digital Link resolver for a lot of a product with a "
     "GTIN.", "200", ("400", "404")),
    ("get", "/v1/stalls/{merchant_id}/stock", "Lots a stall holds today, with origins and "
     "quantities; ?since_ms= to widen.", "200", ("400",)),
    ("get", "/v1/epcis", "EPCIS 2.0 JSON-LD document for ?trace_code= or ?lot=.", "200",
     ("400", "404")),
    ("get", "/v1/private/{trade_id}", "The private record of a trade (prices, payer) as the "
     "node of ?org= holds it: 403 when that organisation is not party to the trade.", "200",
     ("400", "401", "403", "404")),
    ("get", "/v1/findings", "Sales that drew more than their seller had bought.", "200",
     ("400",)),
    ("post", "/v1/parties/{merchant_id}/payer-ids", "Register the payer identities a "
     "business buys with.", "200", ("400", "401", "409", "422")),
    ("post", "/v1/devices", "Enrol (or revoke, with revoked_at_ms) a terminal.", "201",
     ("400", "401", "422")),
    ("get", "/v1/devices/{device_id}", "A registered terminal.", "200", ("400", "404")),
    ("get", "/v1/catalogue", "Product catalogue: codes, synonyms, GTINs.", "200", ()),
    ("post", "/v1/catalogue", "Add or replace a product.", "201", ("400", "401", "422")),
)


def _parameters(path: str) -> list[dict[str, Any]]:
    names = [part[1:-1] for part in path.split("/") if part.startswith("{")]
    return [{"name": name, "in": "path", "required": True,
             "schema": {"type": "integer" if name == "height" else "string"}}
            for name in names]


def openapi_document() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for method, path, summary, ok, errors in OPERATIONS:
        responses: dict[str, Any] = {ok: {"description": "OK"}}
        for status in errors:
            responses[status] = {"description": "Error",
                                 "content": {"application/json": {"schema": {
                                     "$ref": "#/components/schemas/Error"}}}}
        operation: dict[str, Any] = {"summary": summary, "responses": responses}
        if _parameters(path):
            operation["parameters"] = _parameters(path)
        if method == "post":
            operation["requestBody"] = {"required": True, "content": {
                "application/json": {"schema": {"type": "object"}}}}
        paths.setdefault(path, {})[method] = operation
    return {"openapi": "3.1.0",
            "info": {"title": "tracepay ledger bridge", "version": "1"},
            "paths": paths, "components": {"schemas": {"Error": _ERROR}}}
