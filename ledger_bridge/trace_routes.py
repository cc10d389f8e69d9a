"""Trace routes: a sale back to its farms, a lot forward to every buyer, recalls, stall
stock, EPCIS export and GS1 Digital Link resolution. Read-only."""

from __future__ import annotations

import time

import orjson
from flask import Blueprint, Response, jsonify, request
from flask.typing import ResponseReturnValue

from market_protocol.http_errors import ApiError

from . import tracing
from .bridge_context import bridge
from .digital_link import parse_lot_path
from .epcis import epcis_document
from .http_input import check_id, fast_json, int_arg, midnight_ms

__all__ = ["blueprint"]

blueprint = Blueprint("trace", __name__)


# trace -------------------------------------------------------------------------------
@blueprint.get("/v1/trace/<code>")
def trace(code: str) -> ResponseReturnValue:
    ctx = bridge()
    public = ctx.trade_or_404(code)
    own = [line["lot_id"] for line in public["lines"]]
    chain = tracing.backward(ctx.store, own)
    recalls = tracing.recalls_for(ctx.store, own, chain)
    tests = ctx.store.rapid_tests(dict.fromkeys([*own, *(link["lot_id"] for link in chain)]))
    record_ids = [public["trade_id"], *(link["trade_id"] for link in chain)]
    proofs = [p for p in (ctx.ledger.proof(rid) for rid in dict.fromkeys(record_ids)) if p]
    origins = [link for link in chain if link["seller"].get("org") == "production_base"]
    return fast_json({"trace_code": code, "record": public, "chain": chain,
                       "origins": origins, "rapid_tests": tests, "recalls": recalls,
                       "lot_urls": {lot["lot_id"]: ctx.link_for(lot["lot_id"], lot["product"])
                                    for lot in public["lines"]},
                       "proofs": proofs})


@blueprint.get("/v1/lots/<lot>")
def lot_view(lot: str) -> ResponseReturnValue:
    ctx = bridge()
    lot_ids = ctx.lot_ids_or_404(lot)
    downstream = tracing.forward(ctx.store, lot_ids)
    upstream = tracing.backward(ctx.store, lot_ids)
    own = [tracing_link for tracing_link in (ctx.store.line(i) for i in lot_ids) if tracing_link]
    return jsonify({"lot": lot, "lot_ids": lot_ids,
                    "urls": {row["lot_id"]: ctx.link_for(row["lot_id"], row["product"])
                             for row in own},
                    "rapid_tests": ctx.store.rapid_tests(lot_ids),
                    "upstream": upstream, **downstream})


@blueprint.get("/01/<gtin>/10/<lot>")
def digital_link(gtin: str, lot: str) -> ResponseReturnValue:
    ctx = bridge()
    try:
        gtin, lot = parse_lot_path(gtin, lot)
    except ValueError as exc:
        raise ApiError(400, "bad_digital_link", str(exc)) from None
    lot_ids = ctx.lot_ids_or_404(lot)
    rows = [ctx.store.line(i) for i in lot_ids]
    if not any(row and ctx.service.catalogue().gtin_of(row["product"]) == gtin for row in rows):
        raise ApiError(404, "unknown_lot", f"lot {lot!r} is not of GTIN {gtin}")
    return lot_view(lot)


@blueprint.get("/v1/lots/<lot>/recall.csv")
def recall_csv(lot: str) -> ResponseReturnValue:
    ctx = bridge()
    lot_ids = ctx.lot_ids_or_404(lot)
    sort_by = request.args.get("sort", "depth")
    try:
        text = tracing.recall_csv(tracing.forward(ctx.store, lot_ids)["sales"], sort_by)
    except ValueError as exc:
        raise ApiError(400, "bad_parameter", str(exc)) from None
    return Response(text, mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="recall-{lot}.csv"'})


@blueprint.get("/v1/stalls/<merchant_id>/stock")
def stock(merchant_id: str) -> ResponseReturnValue:
    ctx = bridge()
    check_id(merchant_id, "merchant_id")
    party = ctx.store.party(merchant_id)
    lots = ctx.store.lots_on_hand(merchant_id)
    since = int_arg("since_ms", midnight_ms(), 0, 2**53)
    out = []
    for lot in lots:
        if lot.received_at_ms < since:
            continue
        row = ctx.store.line(lot.lot_id) or {}
        upstream = tracing.backward(ctx.store, [lot.lot_id])
        origins = [{"seller": link["seller"], "origin": link["origin"], "lot": link["lot"]}
                   for link in upstream if link["seller"].get("org") == "production_base"]
        seller = ctx.store.trade(row.get("trade_id", "")) or {}
        bought = seller.get("lines", [])
        name = bought[row["line"]]["name"] if row.get("line") is not None and bought \
            else lot.product
        involved = [lot.lot_id, *(link["lot_id"] for link in upstream)]
        out.append({**lot.to_dict(), "name": name, "origin": row.get("origin"),
                    "rapid_tests": ctx.store.rapid_tests(involved),
                    "bought_from": seller.get("seller"),
                    "origins": origins or ([{"seller": seller.get("seller"),
                                             "origin": row.get("origin"),
                                             "lot": row.get("label")}]
                                           if seller.get("seller", {}).get("org") ==
                                           "production_base" else []),
                    "url": ctx.link_for(lot.lot_id, lot.product),
                    "recalls": tracing.recalls_for(ctx.store, [lot.lot_id], upstream)})
    return jsonify({"merchant_id": merchant_id, "name": party["name"] if party else None,
                    "since_ms": since, "lots": out})


@blueprint.get("/v1/epcis")
def epcis() -> ResponseReturnValue:
    ctx = bridge()
    code, lot = request.args.get("trace_code", ""), request.args.get("lot", "")
    if bool(code) == bool(lot):
        raise ApiError(400, "bad_parameter", "give exactly one of trace_code or lot")
    if code:
        public = ctx.trade_or_404(code)
        lot_ids = [line["lot_id"] for line in public["lines"]]
        links = tracing.backward(ctx.store, lot_ids)
        trade_ids = [*(link["trade_id"] for link in reversed(links)), public["trade_id"]]
    else:
        lot_ids = ctx.lot_ids_or_404(lot)
        links = tracing.backward(ctx.store, lot_ids)
        own = [row["trade_id"] for row in (ctx.store.line(i) for i in lot_ids) if row]
        down = tracing.forward(ctx.store, lot_ids)["sales"]
        trade_ids = [*(link["trade_id"] for link in reversed(links)), *own,
                     *(link["trade_id"] for link in down)]
    records = [r for r in (ctx.store.trade(t) for t in dict.fromkeys(trade_ids)) if r]
    tests = ctx.store.rapid_tests(line["lot_id"] for r in records for line in r["lines"])
    tested = {lot_id for test in tests for lot_id in test["lot_ids"]}
    products = {lot_id: row["product"] for lot_id in tested if (row := ctx.store.line(lot_id))}
    document = epcis_document(records, created_ms=int(time.time() * 1000),
                              gtin_of=ctx.service.catalogue().gtin_of, rapid_tests=tests,
                              lot_products=products)
    return Response(orjson.dumps(document), mimetype="application/ld+json")


@blueprint.get("/v1/findings")
def findings() -> ResponseReturnValue:
    return jsonify({"findings": bridge().store.findings(int_arg("limit", 500, 1, 10_000))})
