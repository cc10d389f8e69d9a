"""The platform's OpenAPI 3.1 document, written out as data."""

from __future__ import annotations

from typing import Any

from .validation import (
    APP_REQUEST,
    ORDER_REQUEST,
    PAY_BY_CODE_REQUEST,
    PAYER_CODE_REQUEST,
    REFUND_REQUEST,
)

__all__ = ["openapi_document"]

_ERROR = {"description": "JSON error", "content": {"application/json": {"schema": {
    "$ref": "#/components/schemas/Error"}}}}
_SIGNED: list[dict[str, list[str]]] = [{"appSignature": []}]


def _schema_of(fields: dict[str, Any]) -> dict[str, Any]:
    kinds = {int: "integer", str: "string", bool: "boolean"}
    properties: dict[str, Any] = {}
    for name, spec in fields.items():
        prop: dict[str, Any] = {"type": kinds.get(spec.kind, "string")}
        if spec.nullable:
            prop["type"] = [prop["type"], "null"]
        if spec.minimum is not None:
            prop["minimum"] = spec.minimum
        if spec.maximum is not None:
            prop["maximum"] = spec.maximum
        if spec.pattern is not None and not spec.pattern.startswith("(?s)"):
            prop["pattern"] = f"^{spec.pattern}$"
        if spec.max_length is not None:
            prop["maxLength"] = spec.max_length
        properties[name] = prop
    return {"type": "object", "additionalProperties": False, "properties": properties,
            "required": [name for name, spec in fields.items() if spec.required]}


def _op(summary: str, responses: dict[str, Any], *, body: str | None = None,
        signed: bool = True, params: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    operation: dict[str, Any] = {"summary": summary, "responses": responses}
    if body:
        operation["requestBody"] = {"required": True, "content": {"application/json": {
            "schema": {"$ref": f"#/components/schemas/{body}"}}}}
    if signed:
        operation["security"] = _SIGNED
    if params:
        operation["parameters"] = params
    return operation


def _path_param(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def openapi_document() -> dict[str, Any]:
    ok = {"description": "OK (body signed with X-Signature by the platform key)"}
    errors = {"400": _ERROR, "401": _ERROR, "403": _ERROR, "404": _ERROR, "409": _ERROR}
    return {
        "openapi": "3.1.0",
        "info": {"title": "tracepay sandbox payment platform", "version": "1"},
        "paths": {
            "/healthz": {"get": _op("Liveness", {"200": {"description": "ok"}}, signed=False)},
            "/openapi.json": {"get": _op("This document", {"200": {"description": "OpenAPI 3.1"}},
                                         signed=False)},
            "/v1/keys": {"get": _op("Platform public key", {"200": ok}, signed=False)},
            "/sandbox/apps": {"post": _op("Register a merchant app and its Ed25519 key",
                                          {"200": ok, "201": ok, "400": _ERROR},
                                          body="AppRequest", signed=False)},
            "/v1/orders": {"post": _op("Create an order (idempotent on out_trade_no)",
                                       {"200": ok, "201": ok, **errors}, body="OrderRequest")},
            "/v1/orders/{out_trade_no}": {"get": _op(
                "Query an order", {"200": ok, **errors}, params=[_path_param("out_trade_no")])},
            "/v1/orders/{out_trade_no}/close": {"post": _op(
                "Close an unpaid order", {"200": ok, **errors},
                params=[_path_param("out_trade_no")])},
            "/v1/refunds": {"post": _op("Refund all or part of a paid order",
                                        {"200": ok, "201": ok, **errors}, body="RefundRequest")},
            "/v1/refunds/{out_refund_no}": {"get": _op(
                "Query a refund by out_refund_no", {"200": ok, **errors},
                params=[_path_param("out_refund_no")])},
            "/sandbox/faults": {"post": _op(
                "Stage a failure for a test (only with allow_faults)",
                {"200": ok, "400": _ERROR, "404": _ERROR}, signed=False)},
            "/v1/statements/{day}": {"get": _op(
                "Daily statement CSV (YYYY-MM-DD)", {"200": {"description": "text/csv"},
                                                     **errors}, params=[_path_param("day")])},
            "/checkout/{order_id}": {"get": _op("Hosted checkout page", {
                "200": {"description": "text/html"}, "404": _ERROR}, signed=False,
                params=[_path_param("order_id")])},
            "/checkout/{order_id}/pay": {"post": _op("Pay (form payer_id)", {
                "200": {"description": "JSON when Accept: application/json"},
                "303": {"description": "to return_url"}, "400": _ERROR, "404": _ERROR,
                "409": _ERROR}, signed=False, params=[_path_param("order_id")])},
            "/checkout/{order_id}/cancel": {"post": _op("Cancel", {
                "200": {"description": "JSON when Accept: application/json"},
                "303": {"description": "to return_url"}, "404": _ERROR, "409": _ERROR},
                signed=False, params=[_path_param("order_id")])},
            "/v1/orders/pay-by-code": {"post": _op(
                "Charge a scanned payer code: PAID, WAIT_PAY with trade_state USERPAYING "
                "(poll, then reverse), or CLOSED with fail_reason",
                {"200": ok, "422": _ERROR, **errors}, body="PayByCodeRequest")},
            "/v1/orders/{out_trade_no}/reverse": {"post": _op(
                "Reverse a charge: close if waiting, refund in full if paid (idempotent)",
                {"200": ok, **errors}, params=[_path_param("out_trade_no")])},
            "/sandbox/payer-codes": {"post": _op(
                "Issue a payer code as a wallet shows it (behaviour: pay, password, decline, "
                "insufficient)", {"201": {"description": "the code"}, "400": _ERROR},
                body="PayerCodeRequest", signed=False)},
            "/sandbox/payer-codes/{auth_code}/confirm": {"post": _op(
                "The shopper confirms on their phone: the waiting order is paid",
                {"200": {"description": "the order"}, "409": _ERROR, "422": _ERROR},
                signed=False, params=[_path_param("auth_code")])},
            "/sandbox/payer-codes/{auth_code}/cancel": {"post": _op(
                "The shopper cancels on their phone: the waiting order closes",
                {"200": {"description": "the order"}, "409": _ERROR, "422": _ERROR},
                signed=False, params=[_path_param("auth_code")])},
            "/sandbox/notifications": {"get": _op(
                "Notification deliveries and their attempts", {"200": ok, "400": _ERROR},
                signed=False, params=[{"name": "out_trade_no", "in": "query",
                                       "schema": {"type": "string"}}])},
        },
        "components": {
            "securitySchemes": {"appSignature": {
                "type": "apiKey", "in": "header", "name": "X-Signature",
                "description": "Ed25519 (base64url) over 'METHOD\\nPATH[?QUERY]\\n"
                               "TIMESTAMP\\nNONCE\\nBODY'; with X-App-Id, X-Timestamp "
                               "(epoch ms, within 300 s) and X-Nonce (never reused)."}},
            "schemas": {
                "Error": {"type": "object", "required": ["error", "message"], "properties": {
                    "error": {"type": "string"}, "message": {"type": "string"}}},
                "AppRequest": _schema_of(APP_REQUEST),
                "OrderRequest": _schema_of(ORDER_REQUEST),
                "RefundRequest": _schema_of(REFUND_REQUEST),
                "PayByCodeRequest": _schema_of(PAY_BY_CODE_REQUEST),
                "PayerCodeRequest": _schema_of(PAYER_CODE_REQUEST),
            },
        },
    }
