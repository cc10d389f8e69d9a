"""JSON API: devices and enrolment, payments, notifications, refunds, keys, health."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, jsonify, redirect, request

from market_protocol import ApiError, SchemaError, verify_record_mac
from market_protocol.emvco import max_device_id_length
from market_protocol.schema import Field, check
from market_protocol.signing import public_key_pem, public_key_raw_b64

from . import outbox
from .device_status import payment_results
from .instances import link_name
from .openapi import openapi_document
from .payer_codes import PAYER_CODE_FIELDS
from .requests_in import gateway, json_object, rate_limit, require_manager

__all__ = ["blueprint", "REFUND_REQUEST_SCHEMA"]

blueprint = Blueprint("api", __name__)

REFUND_REQUEST_SCHEMA = "tracepay.refund_request/1"
_ID = r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}"
_DEVICE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}")
_PAYMENT_ID = re.compile(r"p[0-9a-f]{24}")

REFUND_REQUEST_FIELDS: dict[str, Field] = {
    "schema": Field(str, choices=(REFUND_REQUEST_SCHEMA,)),
    "device_id": Field(str, pattern=_DEVICE_ID.pattern),
    "key_version": Field(int, minimum=1, maximum=255),
    "payment_id": Field(str, required=False, pattern=_ID),
    "sale_id": Field(str, required=False, pattern=_ID),
    "amount_fen": Field(int, minimum=1, maximum=2**32 - 1),
    "reason": Field(str, max_length=200),
    "refund_no": Field(str, pattern=_ID),
    "requested_at_ms": Field(int, minimum=0),
    "mac": Field(str, pattern=r"[0-9a-f]{64}"),
}


def _device_id(device_id: str) -> str:
    if not _DEVICE_ID.fullmatch(device_id):
        raise ApiError(400, "invalid_device_id", "device ids are 1-32 letters, digits, _ or -")
    return device_id


@blueprint.get("/healthz")
def healthz() -> Any:
    gw = gateway()
    pending = outbox.pending_count(gw.db.conn)
    link = gw.db.conn.execute("SELECT state FROM link_status WHERE name = ?",
                              (link_name(gw.settings),)).fetchone()
    mqtt = (link["state"] if link else "starting") if gw.settings.get("mqtt_host") else "off"
    return jsonify(status="ok", service="gateway", channels=sorted(gw.channels),
                   outbox_pending=pending, mqtt=mqtt,
                   instance=gw.settings.get("instance_name") or None,
                   time_ms=int(time.time() * 1000))


@blueprint.get("/openapi.json")
def openapi() -> Any:
    public_url = gateway().settings.get("public_url") or ""
    return jsonify(openapi_document(max_device_id_length(public_url)))


@blueprint.get("/v1/keys")
def keys() -> Any:
    key = gateway().signing_key
    return jsonify(gateway_public_key_pem=public_key_pem(key),
                   gateway_public_key_raw=public_key_raw_b64(key))


# -- devices ------------------------------------------------------------------------------
@blueprint.post("/v1/devices")
def enrol() -> Any:
    require_manager()
    return jsonify(gateway().registry.enrol(json_object())), 201


@blueprint.get("/v1/devices")
def list_devices() -> Any:
    require_manager()
    return jsonify(devices=gateway().registry.all())


@blueprint.post("/v1/devices/<device_id>/revoke")
def revoke(device_id: str) -> Any:
    require_manager()
    gw = gateway()
    result = gw.registry.revoke(_device_id(device_id))
    return jsonify({**result, "orders": gw.sweeps.close_device_orders(device_id)})


@blueprint.post("/v1/devices/<device_id>/rotate")
def rotate(device_id: str) -> Any:
    require_manager()
    return jsonify(gateway().registry.rotate(_device_id(device_id)))


@blueprint.put("/v1/merchants/<merchant_id>/name")
def rename_merchant(merchant_id: str) -> Any:
    require_manager()
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}", merchant_id):
        raise ApiError(404, "unknown_merchant", "no such merchant")
    return jsonify(gateway().registry.rename_merchant(merchant_id, json_object()))


@blueprint.post("/v1/enrolments/<code>/claim")
def claim(code: str) -> Any:
    if not re.fullmatch(r"[A-Za-z0-9]{4,32}", code):
        raise ApiError(404, "unknown_code", "no such enrolment code")
    rate_limit("claim_limit_per_address")
    return jsonify(gateway().registry.claim(code))


# -- payments -----------------------------------------------------------------------------
def _payment(payment_id: str) -> Any:
    payment = gateway().payments.get(payment_id) if _PAYMENT_ID.fullmatch(payment_id) else None
    if payment is None:
        raise ApiError(404, "unknown_payment", "no such payment")
    return payment


@blueprint.get("/v1/payments/<payment_id>")
def payment_view(payment_id: str) -> Any:
    return jsonify(gateway().payments.view(_payment(payment_id), detail=True))


@blueprint.get("/v1/payments/<payment_id>/return")
def payment_return(payment_id: str) -> Any:
    """Where the platform sends the shopper back when no consumer app is configured."""
    _payment(payment_id)
    return redirect(f"/v1/payments/{payment_id}", code=303)


@blueprint.post("/v1/payments/<payment_id>/query")
def payment_query(payment_id: str) -> Any:
    """Ask the channel now (a shopper back from checkout before the notification)."""
    rate_limit("notify_limit_per_address")
    payments = gateway().payments
    payment = gateway().sweeps.query(_payment(payment_id)["payment_id"], "query:api")
    if payment is None:
        raise ApiError(404, "unknown_payment", "no such payment")
    return jsonify(payments.view(payment, detail=True))


@blueprint.post("/v1/notify/<channel>")
def notify(channel: str) -> Any:
    rate_limit("notify_limit_per_address")
    status, body, headers = gateway().payments.handle_notification(
        channel, dict(request.headers), request.get_data(cache=True))
    return Response(body, status=status, headers=dict(headers))


@blueprint.post("/v1/payments/<payment_id>/refunds")
def manager_refund(payment_id: str) -> Any:
    """A refund by a manager (HTTP Basic)."""
    user = require_manager()
    payment = _payment(payment_id)
    body = json_object()
    try:
        check({"amount_fen": Field(int, minimum=1, maximum=2**32 - 1),
               "reason": Field(str, max_length=200),
               "refund_no": Field(str, pattern=_ID)}, body)
    except SchemaError as exc:
        raise ApiError(400, "invalid_request", str(exc)) from None
    result = gateway().refunds.refund(payment, body["amount_fen"], body["reason"],
                                      body["refund_no"], f"manager:{user}")
    return jsonify(result), 202 if result["status"] == "processing" else 201


def _device_request(device_id: str, fields: dict[str, Field], what: str,
                    also: Callable[[dict[str, Any]], None] | None = None
                    ) -> tuple[Any, Any, dict[str, Any]]:
    """A terminal's request MACed with its device key: (gateway, device, checked body).
    ``also`` checks the body further, right after its schema."""
    rate_limit("notify_limit_per_address")
    gw = gateway()
    device = gw.registry.get(_device_id(device_id))
    if device is None:
        raise ApiError(404, "unknown_device", "no such device")
    body = json_object()
    try:
        check(fields, body)
    except SchemaError as exc:
        raise ApiError(400, "invalid_request", str(exc)) from None
    if also is not None:
        also(body)
    if body["device_id"] != device_id:
        raise ApiError(403, "device_mismatch", "the request is for another device")
    if device["status"] == "revoked":
        raise ApiError(403, "device_revoked", "this terminal has been revoked")
    if body["key_version"] != device["key_version"] or not verify_record_mac(
            body, gw.registry.device_key(device_id, device["key_version"])):
        raise ApiError(403, "bad_mac", f"the {what}'s MAC does not verify")
    return gw, device, body


def _one_payment_reference(body: dict[str, Any]) -> None:
    if ("payment_id" in body) == ("sale_id" in body):
        raise ApiError(400, "invalid_request", "give exactly one of payment_id and sale_id")


@blueprint.post("/v1/devices/<device_id>/refunds")
def device_refund(device_id: str) -> Any:
    """A refund the terminal asks for, authenticated by a MAC with its device key."""
    gw, _device, body = _device_request(device_id, REFUND_REQUEST_FIELDS, "refund request",
                                        also=_one_payment_reference)
    payment = gw.refunds.find_payment(body.get("payment_id"), body.get("sale_id"))
    if payment is None or payment["device_id"] != device_id:
        raise ApiError(404, "unknown_payment", "no such payment for this device")
    result = gw.refunds.refund(payment, body["amount_fen"], body["reason"],
                               body["refund_no"], f"device:{device_id}")
    return jsonify(result), 202 if result["status"] == "processing" else 201


@blueprint.post("/v1/devices/<device_id>/payer-code-charges")
def device_payer_code_charge(device_id: str) -> Any:
    """Charge the payment code the vendor scanned from the shopper's phone (付款码)."""
    gw, device, body = _device_request(device_id, PAYER_CODE_FIELDS, "charge request")
    payment, _ = gw.payer_codes.charge(device, body)
    view = gw.payments.view(payment)
    return jsonify(view), 202 if view["status"] in ("created", "pending") else 200


@blueprint.post("/v1/devices/<device_id>/payment-status")
def device_payment_status(device_id: str) -> Any:
    """A terminal whose MQTT link is down asks for its sales' payment results."""
    rate_limit("notify_limit_per_address")
    return jsonify(results=payment_results(gateway(), _device_id(device_id), json_object()))
