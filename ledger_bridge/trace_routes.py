"""Trace routes: a sale back to its farms, a lot forward to every buyer, recalls, stall
stock, EPCIS export and GS1 Digital Link resolution. Read-only."""

from __future__ import annotations

import time
from typing import Any

import orjson
from flask import Flask, Response, jsonify, request

from market_protocol.http_errors import ApiError

from . import tracing
from .digital_link import parse_lot_path
from .epcis import epcis_document
from .http_input import check_id, fast_json, int_arg, midnight_ms

__all__ = ["init_app"]


def init_app(app: Flask, api: Any) -> None:
    store, service = api.store, api.service
    ledger = api.ledger
    trade_or_404, lot_ids_or_404, link_for = api.trade_or_404, api.lot_ids_or_404, api.link_for

    # trace -------------------------------------------------------------------------------
    @app.get("/v1/trace/<code>")
    def trace(code: str):  # type: ignore[no-untyped-def]
        public = trade_or_404(code)
        own = [line["lot_id"] for line in public["lines"]]
        chain = tracing.backward(store, own)
        recalls = tracing.recalls_for(store, own, chain)
        tests = store.rapid_tests(dict.fromkeys([*own, *(link["lot_id"] for link in chain)]))
        record_ids = [public["trade_id"], *(link["trade_id"] for link in chain)]
        proofs = [p for p in (ledger.proof(rid) for rid in dict.fromkeys(record_ids)) if p]
        origins = [link for link in chain if link["seller"].get("org") == "production_base"]
        return fast_json({"trace_code": code, "record": public, "chain": chain,
                           "origins": origins, "rapid_tests": tests, "recalls": recalls,
                           "lot_urls": {lot["lot_id"]: link_for(lot["lot_id"], lot["product"])
                                        for lot in public["lines"]},
                           "proofs": proofs})

    @app.get("/v1/lots/<lot>")
    def lot_view(lot: str):  # type: ignore[no-untyped-def]
        lot_ids = lot_ids_or_404(lot)
        downstream = tracing.forward(store, lot_ids)
        upstream = tracing.backward(store, lot_ids)
        own = [tracing_link for tracing_link in (store.line(i) for i in lot_ids) if tracing_link]
        return jsonify({"lot": lot, "lot_ids": lot_ids,
                        "urls": {row["lot_id"]: link_for(row["lot_id"], row["product"])
                                 for row in own},
                        "rapid_tests": store.rapid_tests(lot_ids),
                        "upstream": upstream, **downstream})

    @app.get("/01/<gtin>/10/<lot>")
    def digital_link(gtin: str, lot: str):  # type: ignore[no-untyped-def]
        try:
            gtin, lot = parse_lot_path(gtin, lot)
        except ValueError as exc:
            raise ApiError(400, "bad_digital_link", str(exc)) from None
        lot_ids = lot_ids_or_404(lot)
        rows = [store.line(i) for i in lot_ids]
        if not any(row and service.catalogue().gtin_of(row["product"]) == gtin for row in rows):
            raise ApiError(404, "unknown_lot", f"lot {lot!r} is not of GTIN {gtin}")
        return lot_view(lot)

    @app.get("/v1/lots/<lot>/recall.csv")
    def recall_csv(lot: str):  # type: ignore[no-untyped-def]
        lot_ids = lot_ids_or_404(lot)
        sort_by = request.args.get("sort", "depth")
        try:
            text = tracing.recall_csv(tracing.forward(store, lot_ids)["sales"], sort_by)
        except ValueError as exc:
            raise ApiError(400, "bad_parameter", str(exc)) from None
        return Response(text, mimetype="text/csv", headers={
            "Content-Disposition": f'attachment; filename="recall-{lot}.csv"'})

    @app.get("/v1/stalls/<merchant_id>/stock")
    def stock(merchant_id: str):  # type: ignore[no-untyped-def]
        check_id(merchant_id, "merchant_id")
        party = store.party(merchant_id)
        lots = store.lots_on_hand(merchant_id)
        since = int_arg("since_ms", midnight_ms(), 0, 2**53)
        out = []
        for lot in lots:
            if lot.received_at_ms < since:
                continue
            row = store.line(lot.lot_id) or {}
            upstream = tracing.backward(store, [lot.lot_id])
            origins = [{"seller": link["seller"], "origin": link["origin"], "lot": link["lot"]}
                       for link in upstream if link["seller"].get("org") == "production_base"]
            seller = store.trade(row.get("trade_id", "")) or {}
            bought = seller.get("lines", [])
            name = bought[row["line"]]["name"] if row.get("line") is not None and bought \
                else lot.product
            involved = [lot.lot_id, *(link["lot_id"] for link in upstream)]
            out.append({**lot.to_dict(), "name": name, "origin": row.get("origin"),
                        "rapid_tests": store.rapid_tests(involved),
                        "bought_from": seller.get("seller"),
                        "origins": origins or ([{"seller": seller.get("seller"),
                                                 "origin": row.get("origin"),
                                                 "lot": row.get("label")}]
                                               if seller.get("seller", {}).get("org") ==
                                               "production_base" else []),
                        "url": link_for(lot.lot_id, lot.product),
                        "recalls": tracing.recalls_for(store, [lot.lot_id], upstream)})
        return jsonify({"merchant_id": merchant_id, "name": party["name"] if party else None,
                        "since_ms": since, "lots": out})

    @app.get("/v1/epcis")
    def epcis():  # type: ignore[no-untyped-def]
        code, lot = request.args.get("trace_code"), request.args.get("lot")
        if bool(code) == bool(lot):
            raise ApiError(400, "bad_parameter", "give exactly one of trace_code or lot")
        if code:
            public = trade_or_404(code)
            lot_ids = [line["lot_id"] for line in public["lines"]]
            links = tracing.backward(store, lot_ids)
            trade_ids = [*(link["trade_id"] for link in reversed(links)), public["trade_id"]]
        else:
            lot_ids = lot_ids_or_404(lot)
            links = tracing.backward(store, lot_ids)
            own = [row["trade_id"] for row in (store.line(i) for i in lot_ids) if row]
            down = tracing.forward(store, lot_ids)["sales"]
            trade_ids = [*(link["trade_id"] for link in reversed(links)), *own,
                         *(link["trade_id"] for link in down)]
        records = [r for r in (store.trade(t) for t in dict.fromkeys(trade_ids)) if r]
        tests = store.rapid_tests(line["lot_id"] for r in records for line in r["lines"])
        tested = {lot_id for test in tests for lot_id in test["lot_ids"]}
        products = {lot_id: row["product"] for lot_id in tested if (row := store.line(lot_id))}
        document = epcis_document(records, created_ms=int(time.time() * 1000),
                                  gtin_of=service.catalogue().gtin_of, rapid_tests=tests,
                                  lot_products=products)
        return Response(orjson.dumps(document), mimetype="application/ld+json")

    @app.get("/v1/findings")
    def findings():  # type: ignore[no-untyped-def]
        return jsonify({"findings": store.findings(int_arg("limit", 500, 1, 10_000))})
