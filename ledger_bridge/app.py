"""The bridge's HTTP API (docs/protocol.md §7, docs/bridge.md): a thin Flask shell over
``BridgeService``. Writes go through the single writer; reads go straight to the index and
the ledger."""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson
from flask import Flask, Response, jsonify, request

from market_protocol import ORGS
from market_protocol.http_errors import ApiError, install_json_errors

from . import tracing
from .catalogue import CatalogueEntry
from .contract import DeviceRecord
from .digital_link import lot_url, parse_lot_path
from .epcis import epcis_document
from .openapi import openapi_document
from .service import BridgeService

__all__ = ["create_app"]

_ID_CHARS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:-")


def _json_body() -> Any:
    raw = request.get_data(cache=False)
    if not raw:
        raise ApiError(400, "malformed_json", "the request body is empty; send a JSON object")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, "malformed_json", f"the body is not JSON: {exc}") from exc


def _object_body() -> dict[str, Any]:
    body = _json_body()
    if not isinstance(body, dict):
        raise ApiError(400, "malformed_json", "the body must be a JSON object")
    return body


def _check_id(value: str, what: str) -> str:
    if not value or len(value) > 64 or not set(value) <= _ID_CHARS:
        raise ApiError(400, f"bad_{what}", f"{what} must be 1-64 of letters, digits, _ . : -")
    return value


def _int_arg(name: str, default: int, lo: int, hi: int) -> int:
    text = request.args.get(name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise ApiError(400, "bad_parameter", f"{name} must be an integer") from None
    if not lo <= value <= hi:
        raise ApiError(400, "bad_parameter", f"{name} must be between {lo} and {hi}")
    return value


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
        head = ledger.head()
        return jsonify({"status": "ok", "service": "bridge", **store.counts(),
                        "ledger_height": head["height"], "ledger_entries": head["trades"],
                        **service.health()})

    @app.get("/openapi.json")
    def openapi():  # type: ignore[no-untyped-def]
        return jsonify(openapi_document())

    # trades in ---------------------------------------------------------------------------
    @app.post("/v1/trades")
    def post_trade():  # type: ignore[no-untyped-def]
        trade = _object_body()
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
        new = _int_arg("new", height, 1, height)
        old = _int_arg("old", 1, 1, new)
        return jsonify({"old": old, "new": new, "old_root": ledger.ledger_root(old),
                        "new_root": ledger.ledger_root(new),
                        "proof": ledger.consistency(old, new)})

    # trace -------------------------------------------------------------------------------
    @app.get("/v1/trace/<code>")
    def trace(code: str):  # type: ignore[no-untyped-def]
        public = trade_or_404(code)
        own = [line["lot_id"] for line in public["lines"]]
        chain = tracing.backward(store, own)
        recalls = tracing.recalls_for(store, own, chain)
        tests = store.rapid_tests(dict.fromkeys([*own, *(link["lot_id"] for link in chain)]))
        record_ids = [public["trade_id"], *(_trade_id_of(link) for link in chain)]
        proofs = [p for p in (ledger.proof(rid) for rid in dict.fromkeys(record_ids)) if p]
        origins = [link for link in chain if link["seller"].get("org") == "production_base"]
        return _fast_json({"trace_code": code, "record": public, "chain": chain,
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

    @app.post("/v1/lots/<lot>/tests")
    def post_test(lot: str):  # type: ignore[no-untyped-def]
        admin()
        body = _object_body()
        if len(lot) > 64:
            raise ApiError(400, "bad_lot", "lot codes are at most 64 characters")
        try:
            record, created = service.writer.call(lambda: service.intake.rapid_test(lot, body))
        except LookupError:
            raise ApiError(404, "unknown_lot", f"no lot is called {lot!r}") from None
        except ValueError as exc:
            raise ApiError(422, "bad_rapid_test", str(exc)) from None
        return jsonify({**record, "status": "recorded" if created else "duplicate"}), \
            201 if created else 200

    @app.get("/v1/stalls/<merchant_id>/stock")
    def stock(merchant_id: str):  # type: ignore[no-untyped-def]
        _check_id(merchant_id, "merchant_id")
        party = store.party(merchant_id)
        lots = store.lots_on_hand(merchant_id)
        since = _int_arg("since_ms", _midnight_ms(), 0, 2**53)
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
            trade_ids = [*(_trade_id_of(link) for link in reversed(links)), public["trade_id"]]
        else:
            lot_ids = lot_ids_or_404(lot)
            links = tracing.backward(store, lot_ids)
            own = [row["trade_id"] for row in (store.line(i) for i in lot_ids) if row]
            down = tracing.forward(store, lot_ids)["sales"]
            trade_ids = [*(_trade_id_of(link) for link in reversed(links)), *own,
                         *(_trade_id_of(link) for link in down)]
        records = [store.trade(t) for t in dict.fromkeys(trade_ids)]
        document = epcis_document([r for r in records if r], created_ms=int(time.time() * 1000),
                                  gtin_of=service.catalogue().gtin_of)
        return Response(orjson.dumps(document), mimetype="application/ld+json")

    @app.get("/v1/private/<trade_id>")
    def private(trade_id: str):  # type: ignore[no-untyped-def]
        admin()
        _check_id(trade_id, "trade_id")
        org = request.args.get("org")
        if org not in ORGS:
            raise ApiError(400, "bad_org", f"org must be one of {list(ORGS)}")
        stored = ledger.get(f"{trade_id}/private", org)
        if stored is None:
            raise ApiError(404, "unknown_trade", f"no trade {trade_id!r} on the ledger")
        if stored.record is None:
            raise ApiError(403, "not_a_party", f"{org} is not party to trade {trade_id}; "
                           f"its node holds only the record's hash")
        return jsonify({"trade_id": trade_id, "org": org, "held_by": list(stored.held_by),
                        "record_hash": stored.record_hash, "record": stored.record})

    @app.get("/v1/findings")
    def findings():  # type: ignore[no-untyped-def]
        return jsonify({"findings": store.findings(_int_arg("limit", 500, 1, 10_000))})

    # registrations -----------------------------------------------------------------------
    @app.post("/v1/parties/<merchant_id>/payer-ids")
    def post_payer_ids(merchant_id: str):  # type: ignore[no-untyped-def]
        admin()
        _check_id(merchant_id, "merchant_id")
        body = _object_body()
        payer_ids, name, org = body.get("payer_ids"), body.get("name"), body.get("org")
        if not isinstance(payer_ids, list) or not 0 < len(payer_ids) <= 100 or not all(
                isinstance(p, str) and 0 < len(p) <= 128 for p in payer_ids):
            raise ApiError(422, "bad_payer_ids", "payer_ids must be a list of 1-100 strings "
                           "of at most 128 characters")
        known = store.party(merchant_id)
        name = name if name is not None else (known or {}).get("name")
        org = org if org is not None else (known or {}).get("org")
        if not isinstance(name, str) or not 0 < len(name) <= 120:
            raise ApiError(422, "bad_name", "name (1-120 characters) is required for a new party")
        if org not in ORGS:
            raise ApiError(422, "bad_org", f"org must be one of {list(ORGS)}")
        try:
            count = service.writer.call(
                lambda: store.put_party(merchant_id, name, org, payer_ids))
        except ValueError as exc:
            raise ApiError(409, "payer_id_taken", str(exc)) from None
        return jsonify({"merchant_id": merchant_id, "name": name, "org": org,
                        "payer_ids": count})

    @app.post("/v1/devices")
    def post_device():  # type: ignore[no-untyped-def]
        admin()
        body = _object_body()
        try:
            device = DeviceRecord(_check_id(str(body.get("device_id", "")), "device_id"),
                                  _check_id(str(body.get("merchant_id", "")), "merchant_id"),
                                  _epoch(body, "enrolled_at_ms", required=True),
                                  _epoch(body, "revoked_at_ms", required=False))
        except ValueError as exc:
            raise ApiError(422, "bad_device", str(exc)) from None
        record = service.writer.call(lambda: service.intake.register_device(device))
        return jsonify(record), 201

    @app.get("/v1/devices/<device_id>")
    def get_device(device_id: str):  # type: ignore[no-untyped-def]
        device = store.device(_check_id(device_id, "device_id"))
        if device is None:
            raise ApiError(404, "unknown_device", f"device {device_id!r} is not registered")
        return jsonify(device.to_dict())

    @app.get("/v1/catalogue")
    def get_catalogue():  # type: ignore[no-untyped-def]
        return jsonify({"products": service.catalogue().to_list()})

    @app.post("/v1/catalogue")
    def post_catalogue():  # type: ignore[no-untyped-def]
        admin()
        try:
            entry = CatalogueEntry.from_dict(_object_body())
            service.add_catalogue_entry(entry)
        except ValueError as exc:
            raise ApiError(422, "bad_product", str(exc)) from None
        return jsonify(entry.to_dict()), 201

    return app


def _fast_json(body: Any) -> Response:
    """orjson for the large, hot answers (a trace with its proofs)."""
    return Response(orjson.dumps(body), mimetype="application/json")


def _trade_id_of(link: Mapping[str, Any]) -> str:
    return link["trade_id"]


def _epoch(body: Mapping[str, Any], name: str, *, required: bool) -> int | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be epoch milliseconds")
    return value


def _midnight_ms() -> int:
    """Start of today in the bridge's local time zone: "today's stock" is a market day."""
    today = datetime.now().astimezone().replace(hour=0, minute=0, second=0, microsecond=0)
    return int(today.timestamp() * 1000)
