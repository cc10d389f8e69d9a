"""Routes that change what the bridge knows besides trades: rapid tests, payer identities
of businesses, terminals, the catalogue; and the parties' view of their private records.
All go through the single writer and, when an admin token is set, need it."""

from __future__ import annotations

from flask import Blueprint, jsonify, request
from flask.typing import ResponseReturnValue

from market_protocol import ORGS
from market_protocol.http_errors import ApiError
from trace_ledger.rules.contract import DeviceRecord

from .bridge_context import bridge
from .catalogue import CatalogueEntry
from .http_input import check_id, epoch_field, object_body

__all__ = ["blueprint"]

blueprint = Blueprint("admin", __name__)


@blueprint.post("/v1/lots/<lot>/tests")
def post_test(lot: str) -> ResponseReturnValue:
    ctx = bridge()
    ctx.admin()
    body = object_body()
    if len(lot) > 64:
        raise ApiError(400, "bad_lot", "lot codes are at most 64 characters")
    try:
        record, created = ctx.write(lambda intake: intake.rapid_test(lot, body))
    except LookupError:
        raise ApiError(404, "unknown_lot", f"no lot is called {lot!r}") from None
    except ValueError as exc:
        raise ApiError(422, "bad_rapid_test", str(exc)) from None
    return jsonify({**record, "status": "recorded" if created else "duplicate"}), \
        201 if created else 200


@blueprint.get("/v1/private/<trade_id>")
def private(trade_id: str) -> ResponseReturnValue:
    ctx = bridge()
    ctx.admin()
    check_id(trade_id, "trade_id")
    org = request.args.get("org")
    if org not in ORGS:
        raise ApiError(400, "bad_org", f"org must be one of {list(ORGS)}")
    stored = ctx.ledger.get(f"{trade_id}/private", org)
    if stored is None:
        raise ApiError(404, "unknown_trade", f"no trade {trade_id!r} on the ledger")
    if stored.record is None:
        raise ApiError(403, "not_a_party", f"{org} is not party to trade {trade_id}; "
                       f"its node holds only the record's hash")
    return jsonify({"trade_id": trade_id, "org": org, "held_by": list(stored.held_by),
                    "record_hash": stored.record_hash, "record": stored.record})


# registrations -----------------------------------------------------------------------
@blueprint.post("/v1/parties/<merchant_id>/payer-ids")
def post_payer_ids(merchant_id: str) -> ResponseReturnValue:
    ctx = bridge()
    ctx.admin()
    check_id(merchant_id, "merchant_id")
    body = object_body()
    payer_ids, name, org = body.get("payer_ids"), body.get("name"), body.get("org")
    if not isinstance(payer_ids, list) or not 0 < len(payer_ids) <= 100 or not all(
            isinstance(p, str) and 0 < len(p) <= 128 for p in payer_ids):
        raise ApiError(422, "bad_payer_ids", "payer_ids must be a list of 1-100 strings "
                       "of at most 128 characters")
    known = ctx.store.party(merchant_id)
    name = name if name is not None else (known or {}).get("name")
    org = org if org is not None else (known or {}).get("org")
    if not isinstance(name, str) or not 0 < len(name) <= 120:
        raise ApiError(422, "bad_name", "name (1-120 characters) is required for a new party")
    if org not in ORGS:
        raise ApiError(422, "bad_org", f"org must be one of {list(ORGS)}")
    try:
        count = ctx.write(
            lambda intake: intake.store.put_party(merchant_id, name, org, payer_ids))
    except ValueError as exc:
        raise ApiError(409, "payer_id_taken", str(exc)) from None
    return jsonify({"merchant_id": merchant_id, "name": name, "org": org,
                    "payer_ids": count})


@blueprint.post("/v1/devices")
def post_device() -> ResponseReturnValue:
    ctx = bridge()
    ctx.admin()
    body = object_body()
    try:
        device = DeviceRecord(check_id(str(body.get("device_id", "")), "device_id"),
                              check_id(str(body.get("merchant_id", "")), "merchant_id"),
                              epoch_field(body, "enrolled_at_ms", required=True),
                              epoch_field(body, "revoked_at_ms", required=False))
    except ValueError as exc:
        raise ApiError(422, "bad_device", str(exc)) from None
    record = ctx.write(lambda intake: intake.register_device(device))
    return jsonify(record), 201


@blueprint.get("/v1/devices/<device_id>")
def get_device(device_id: str) -> ResponseReturnValue:
    device = bridge().store.device(check_id(device_id, "device_id"))
    if device is None:
        raise ApiError(404, "unknown_device", f"device {device_id!r} is not registered")
    return jsonify(device.to_dict())


@blueprint.get("/v1/catalogue")
def get_catalogue() -> ResponseReturnValue:
    return jsonify({"products": bridge().service.catalogue().to_list()})


@blueprint.post("/v1/catalogue")
def post_catalogue() -> ResponseReturnValue:
    ctx = bridge()
    ctx.admin()
    try:
        entry = CatalogueEntry.from_dict(object_body())
        ctx.service.add_catalogue_entry(entry)
    except ValueError as exc:
        raise ApiError(422, "bad_product", str(exc)) from None
    return jsonify(entry.to_dict()), 201
