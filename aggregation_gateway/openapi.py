"""The OpenAPI 3.1 document of every gateway endpoint, built once from data.

The schemathesis test generates requests from this document and checks every answer
against it, so a change of shape on either side fails a test.
"""

from __future__ import annotations

from functools import cache
from typing import Any

__all__ = ["openapi_document"]

_ERROR = {"$ref": "#/components/schemas/Error"}
_STR = {"type": "string"}
_INT = {"type": "integer"}
_NSTR = {"type": ["string", "null"]}
_NINT = {"type": ["integer", "null"]}
_ID_PATTERN = "^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
_DEVICE_PATTERN = "^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$"


def _obj(required: dict[str, Any], optional: dict[str, Any] | None = None,
         closed: bool = False) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "required": sorted(required),
                              "properties": {**required, **(optional or {})}}
    if closed:
        schema["additionalProperties"] = False
    return schema


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _html(description: str = "HTML page") -> dict[str, Any]:
    return {"description": description, "content": {"text/html": {"schema": _STR}}}


def _errors(*codes: int) -> dict[str, Any]:
    return {str(code): _json(_ERROR, "refused, with a reason") for code in codes}


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _form(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True,
            "content": {"application/x-www-form-urlencoded": {"schema": schema}}}


def _path(name: str, pattern: str | None = None) -> dict[str, Any]:
    schema = {"type": "string", **({"pattern": pattern} if pattern else {})}
    return {"name": name, "in": "path", "required": True, "schema": schema}


def _redirect(description: str) -> dict[str, Any]:
    return {"description": description,
            "headers": {"Location": {"schema": _STR, "required": True}}}


_SCHEMAS: dict[str, Any] = {
    "Error": _obj({"error": _STR, "message": _STR}),
    "Merchant": _obj({"merchant_id": _STR, "name": _NSTR, "org": _NSTR}),
    "Payment": _obj({
        "payment_id": _STR, "status": {"enum": ["created", "pending", "paid", "failed",
                                                "expired", "refunded",
                                                "partially_refunded"]},
        "amount_fen": _INT, "currency": _STR, "refunded_fen": _INT, "channel": _STR,
        "merchant": {"$ref": "#/components/schemas/Merchant"},
        "items": {"type": "array", "items": {"type": "object"}},
        "checkout_url": _NSTR, "trace_code": _NSTR, "expires_at_ms": _INT,
    }, {"device_id": _STR, "seq": _INT, "sale_id": _NSTR, "paid_at_ms": _NINT,
        "created_at_ms": _INT}),
    "Enrolment": _obj({"device_id": _STR, "key_version": _INT, "enrolment_code": _STR,
                       "expires_at_ms": _INT}, {"merchant_id": _STR, "merchant_name": _STR}),
    "EnrolRequest": _obj({
        "merchant_id": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"},
        "merchant_name": {"type": "string", "minLength": 1, "maxLength": 120,
                          "pattern": "\\S"},
        "org": {"enum": ["production_base", "wholesale_market", "retail_market"]},
    }, {"device_id": {"type": ["string", "null"],
                      "pattern": "^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$"}},
        closed=True),
    "Claim": _obj({"device_id": _STR, "key_version": _INT, "device_key": _STR,
                   "gateway_url": _STR,
                   "mqtt": _obj({"host": _STR, "port": _INT, "username": _STR,
                                 "password": _STR}),
                   "merchant": _obj({"merchant_id": _STR, "name": _STR, "org": _STR})}),
    "Device": _obj({"device_id": _STR, "merchant_id": _STR, "merchant_name": _STR,
                    "org": _STR, "key_version": _INT, "status": _STR,
                    "enrolled_at_ms": _INT, "claimed_at_ms": _NINT, "revoked_at_ms": _NINT}),
    "Refund": _obj({"refund_id": _STR, "refund_no": _STR, "payment_id": _STR,
                    "amount_fen": _INT, "reason": _STR, "status": _STR,
                    "created_at_ms": _INT}),
    "RefundRequest": _obj({
        "amount_fen": {"type": "integer", "minimum": 1, "maximum": 4294967295},
        "reason": {"type": "string", "maxLength": 200},
        "refund_no": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"},
    }, closed=True),
    "DeviceRefundRequest": {**_obj({
        "schema": {"const": "tracepay.refund_request/1"},
        "device_id": {"type": "string", "pattern": _DEVICE_PATTERN},
        "key_version": {"type": "integer", "minimum": 1, "maximum": 255},
        "amount_fen": {"type": "integer", "minimum": 1, "maximum": 4294967295},
        "reason": {"type": "string", "maxLength": 200},
        "refund_no": {"type": "string", "pattern": _ID_PATTERN},
        "requested_at_ms": {"type": "integer", "minimum": 0},
        "mac": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
    }, {"payment_id": {"type": "string", "pattern": _ID_PATTERN},
        "sale_id": {"type": "string", "pattern": _ID_PATTERN}}, closed=True),
        "oneOf": [{"required": ["payment_id"], "not": {"required": ["sale_id"]}},
                  {"required": ["sale_id"], "not": {"required": ["payment_id"]}}]},
}


def _paths() -> dict[str, Any]:
    basic: list[dict[str, list[str]]] = [{"managerBasic": []}]
    session: list[dict[str, list[str]]] = [{"managerSession": []}]
    payment_id = _path("payment_id")
    device_id = _path("device_id", "^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")
    login_redirect = {"302": _redirect("not logged in: to the login page")}
    return {
        "/healthz": {"get": {"summary": "Liveness and outbox backlog", "responses": {
            "200": _json(_obj({"status": {"const": "ok"}, "service": _STR,
                               "channels": {"type": "array", "items": _STR},
                               "outbox_pending": _INT,
                               "mqtt": {"enum": ["off", "starting", "subscribed",
                                                 "disconnected", "stopped"]},
                               "instance": {"type": ["string", "null"]},
                               "time_ms": _INT}))}}},
        "/openapi.json": {"get": {"summary": "This document",
                                  "responses": {"200": _json({"type": "object"})}}},
        "/v1/keys": {"get": {"summary": "The gateway's Ed25519 public key (trade signatures)",
                             "responses": {"200": _json(_obj({
                                 "gateway_public_key_pem": _STR,
                                 "gateway_public_key_raw": _STR}))}}},
        "/v1/devices": {
            "post": {"summary": "Enrol a terminal (manager)", "security": basic,
                     "requestBody": _body({"$ref": "#/components/schemas/EnrolRequest"}),
                     "responses": {"201": _json({"$ref": "#/components/schemas/Enrolment"}),
                                   **_errors(400, 401, 409, 413, 415, 429)}},
            "get": {"summary": "All terminals (manager)", "security": basic,
                    "responses": {"200": _json(_obj({"devices": {
                        "type": "array", "items": {"$ref": "#/components/schemas/Device"}}})),
                        **_errors(401, 429)}}},
        "/v1/merchants/{merchant_id}/name": {"put": {
            "summary": "Rename a merchant (manager); enrolling a terminal never does",
            "security": basic,
            "parameters": [_path("merchant_id", "^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")],
            "requestBody": _body(_obj({"merchant_name": {
                "type": "string", "minLength": 1, "maxLength": 120, "pattern": "\\S"}},
                closed=True)),
            "responses": {"200": _json(_obj({"merchant_id": _STR, "merchant_name": _STR,
                                             "org": _STR})),
                          **_errors(400, 401, 404, 413, 415, 429)}}},
        "/v1/devices/{device_id}/revoke": {"post": {
            "summary": "Revoke a terminal: its QR codes are refused at once (manager)",
            "security": basic, "parameters": [device_id],
            "responses": {"200": _json(_obj({"device_id": _STR, "status": _STR})),
                          **_errors(400, 401, 404, 429)}}},
        "/v1/devices/{device_id}/rotate": {"post": {
            "summary": "New key version and a code to claim it (manager)", "security": basic,
            "parameters": [device_id],
            "responses": {"200": _json({"$ref": "#/components/schemas/Enrolment"}),
                          **_errors(400, 401, 404, 409, 429)}}},
        "/v1/enrolments/{code}/claim": {"post": {
            "summary": "Claim a device key with a one-time enrolment code",
            "parameters": [_path("code")],
            "responses": {"200": _json({"$ref": "#/components/schemas/Claim"}),
                          **_errors(403, 404, 410, 429)}}},
        "/v1/payments/{payment_id}": {"get": {
            "summary": "A payment (public; ids are unguessable)", "parameters": [payment_id],
            "responses": {"200": _json({"$ref": "#/components/schemas/Payment"}),
                          **_errors(404)}}},
        "/v1/payments/{payment_id}/return": {"get": {
            "summary": "Where the platform returns the shopper without a consumer app",
            "parameters": [payment_id],
            "responses": {"303": _redirect("to the payment"), **_errors(404)}}},
        "/v1/payments/{payment_id}/query": {"post": {
            "summary": "Ask the channel about a pending payment now",
            "parameters": [payment_id],
            "responses": {"200": _json({"$ref": "#/components/schemas/Payment"}),
                          **_errors(404, 429)}}},
        "/v1/payments/{payment_id}/refunds": {"post": {
            "summary": "Refund all or part of a payment (manager)", "security": basic,
            "parameters": [payment_id],
            "requestBody": _body({"$ref": "#/components/schemas/RefundRequest"}),
            "responses": {"201": _json({"$ref": "#/components/schemas/Refund"}),
                          "202": _json({"$ref": "#/components/schemas/Refund"}),
                          **_errors(400, 401, 404, 409, 413, 415, 429, 502)}}},
        "/v1/devices/{device_id}/refunds": {"post": {
            "summary": "A refund asked for by the terminal, MACed with its device key",
            "parameters": [device_id],
            "requestBody": _body({"$ref": "#/components/schemas/DeviceRefundRequest"}),
            "responses": {"201": _json({"$ref": "#/components/schemas/Refund"}),
                          "202": _json({"$ref": "#/components/schemas/Refund"}),
                          **_errors(400, 403, 404, 409, 413, 415, 429, 502)}}},
        "/v1/devices/{device_id}/payer-code-charges": {"post": {
            "summary": "Charge a shopper's payment code (付款码) scanned by the terminal "
                       "(MACed); 202 while the shopper confirms on their phone",
            "parameters": [device_id],
            "requestBody": _body(_obj({
                "schema": {"const": "tracepay.payer_code_charge/1"},
                "device_id": {"type": "string", "pattern": _DEVICE_PATTERN},
                "key_version": {"type": "integer", "minimum": 1, "maximum": 255},
                "order_no": {"type": "integer", "minimum": 1, "maximum": 2**53},
                "amount_fen": {"type": "integer", "minimum": 1, "maximum": 2**32 - 1},
                "currency": {"const": "CNY"},
                "issued_at": {"type": "integer", "minimum": 0, "maximum": 2**40},
                "nonce": {"type": "string", "pattern": "^[0-9a-f]{16,64}$"},
                "auth_code": {"type": "string", "pattern": "^[0-9]{16,24}$"},
                "mac": {"type": "string", "pattern": "^[0-9a-f]{64}$"}}, closed=True)),
            "responses": {"200": _json({"$ref": "#/components/schemas/Payment"}),
                          "202": _json({"$ref": "#/components/schemas/Payment"}),
                          **_errors(400, 402, 403, 404, 409, 410, 413, 415, 422, 429)}}},
        "/v1/devices/{device_id}/payment-status": {"post": {
            "summary": "Payment results for a terminal whose MQTT link is down (MACed)",
            "parameters": [device_id],
            "requestBody": _body(_obj({
                "schema": {"const": "tracepay.status_request/1"},
                "device_id": {"type": "string", "pattern": _DEVICE_PATTERN},
                "key_version": {"type": "integer", "minimum": 1, "maximum": 255},
                "seqs": {"type": "array", "minItems": 1, "maxItems": 50,
                         "items": {"type": "integer", "minimum": 1,
                                   "maximum": 2**53 - 1}},
                "requested_at_ms": {"type": "integer", "minimum": 0},
                "mac": {"type": "string", "pattern": "^[0-9a-f]{64}$"}}, closed=True)),
            "responses": {"200": _json(_obj({"results": {
                "type": "array", "items": {"type": "object"}}})),
                          **_errors(400, 403, 404, 413, 415, 429)}}},
        "/v1/notify/{channel}": {"post": {
            "summary": "Asynchronous payment notification from a channel (signed)",
            "parameters": [_path("channel")],
            "requestBody": {"required": True, "content": {
                "application/json": {"schema": {"type": "object"}},
                "application/x-www-form-urlencoded": {"schema": {"type": "object"}}}},
            "responses": {"200": {"description": "acknowledged in the channel's own format",
                                  "content": {"text/plain": {"schema": _STR},
                                              "application/json": {"schema": {}}}},
                          **_errors(400, 401, 404, 413, 429)}}},
        "/q/{token}": {"get": {
            "summary": "Scan landing of a dynamic QR code",
            "parameters": [_path("token", "^[A-Za-z0-9_-]{40,200}$"),
                           {"name": "channel", "in": "query", "required": False,
                            "schema": _STR}],
            "responses": {
                "200": {"description": "the payment (JSON) or its page (HTML)", "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/Payment"}},
                    "text/html": {"schema": _STR}}},
                "300": {"description": "several channels: the shopper must choose",
                        "content": {"application/json": {"schema": _obj({
                            "status": {"const": "choose_channel"},
                            "channels": {"type": "array", "items": _STR},
                            "amount_fen": _INT, "currency": _STR})},
                            "text/html": {"schema": _STR}}},
                "303": _redirect("to the consumer app's pay page"),
                **{str(code): {"description": "refused, with a reason", "content": {
                    "application/json": {"schema": _ERROR}, "text/html": {"schema": _STR}}}
                   for code in (400, 403, 404, 409, 410, 429, 502, 503)}}}},
        "/manager/login": {
            "get": {"summary": "Manager login page", "responses": {"200": _html()}},
            "post": {"summary": "Log in (form with the login page's CSRF token)",
                     "requestBody": _form(_obj({"username": _STR, "password": _STR,
                                                "csrf_token": _STR})),
                     "responses": {"303": _redirect("logged in"), "401": _html("wrong"),
                                   **_errors(403, 429)}}},
        "/manager/logout": {"post": {"summary": "Log out", "security": session,
                                     "responses": {"303": _redirect("logged out"),
                                                   **login_redirect, **_errors(403)}}},
        "/manager/": {"get": {"summary": "Terminals and live payments", "security": session,
                              "responses": {"200": _html(), **login_redirect}}},
        "/manager/devices": {"post": {
            "summary": "Enrol from the web form", "security": session,
            "requestBody": _form(_obj({"merchant_id": _STR, "merchant_name": _STR,
                                       "org": _STR, "csrf_token": _STR})),
            "responses": {"200": _html(), **login_redirect, **_errors(400, 403, 409)}}},
        "/manager/devices/{device_id}/revoke": {"post": {
            "summary": "Revoke from the web", "security": session, "parameters": [device_id],
            "responses": {"303": _redirect("back"), **login_redirect,
                          **_errors(403, 404)}}},
        "/manager/devices/{device_id}/rotate": {"post": {
            "summary": "Rotate from the web", "security": session, "parameters": [device_id],
            "responses": {"200": _html(), **login_redirect, **_errors(403, 404, 409)}}},
        "/manager/payments.json": {"get": {
            "summary": "Latest payments for the live view", "security": session,
            "responses": {"200": _json(_obj({"payments": {"type": "array"}})),
                          **_errors(401)}}},
        "/manager/audit": {"get": {"summary": "Latest channel calls (secrets removed)",
                                   "security": session,
                                   "responses": {"200": _html(), **login_redirect}}},
        "/manager/settlement": {"get": {
            "summary": "Per-vendor daily settlement with chart", "security": session,
            "parameters": [{"name": "date", "in": "query", "schema": {"format": "date",
                                                                     "type": "string"}}],
            "responses": {"200": _html(), **login_redirect, **_errors(400)}}},
        "/manager/settlement.csv": {"get": {
            "summary": "The settlement as CSV", "security": session,
            "parameters": [{"name": "date", "in": "query", "schema": {"format": "date",
                                                                     "type": "string"}}],
            "responses": {"200": {"description": "CSV", "content": {"text/csv": {
                "schema": _STR}}}, **_errors(400, 401)}}},
        "/manager/reconciliation": {
            "get": {"summary": "Open reconciliation items by kind", "security": session,
                    "responses": {"200": _html(), **login_redirect, **_errors(400)}},
            "post": {"summary": "Reconcile a day against the platform's statement",
                     "security": session,
                     "requestBody": _form(_obj({"date": _STR, "csrf_token": _STR})),
                     "responses": {"200": {"description": "result", "content": {
                         "text/html": {"schema": _STR}, "application/json": {
                             "schema": {"type": "object"}}}}, **login_redirect,
                         **_errors(400, 403, 502)}}},
    }


@cache
def openapi_document(device_id_max: int = 32) -> dict[str, Any]:
    """The document; ``device_id_max`` is this gateway's longest enrolable device id, which
    depends on its public address (the EMV code of a sale must fit: see
    ``market_protocol.emvco.max_device_id_length``), so the served document states it."""
    schemas = {**_SCHEMAS, "EnrolRequest": _enrol_request(device_id_max)}
    return {
        "openapi": "3.1.0",
        "info": {"title": "tracepay aggregation gateway", "version": "1",
                 "description": "Devices, scan landing, payments and notifications; see "
                                "docs/protocol.md and docs/gateway.md."},
        "paths": _paths(),
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "managerBasic": {"type": "http", "scheme": "basic"},
                "managerSession": {"type": "apiKey", "in": "cookie",
                                   "name": "tracepay_manager"}}},
    }


def _enrol_request(device_id_max: int) -> dict[str, Any]:
    schema = _SCHEMAS["EnrolRequest"]
    longest = max(1, min(device_id_max, 32))
    device_id = {"type": ["string", "null"],
                 "pattern": f"^[A-Za-z0-9][A-Za-z0-9_-]{{0,{longest - 1}}}$"}
    return {**schema, "properties": {**schema["properties"], "device_id": device_id}}
