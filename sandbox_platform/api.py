"""The merchant API (``/v1``, signed both ways) and the sandbox set-up endpoints."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import orjson
from flask import Blueprint, jsonify, request
from flask.typing import ResponseReturnValue

from market_protocol import canonical_json, signing
from market_protocol.http_errors import ApiError
from market_protocol.schema import SchemaError

from . import statement, validation
from .fees import refund_fee_fen
from .order_views import created_view, order_view, refund_view
from .request_auth import authenticate_app, signed_response
from .state import platform_state
from .store import StoreConflict, now_ms

__all__ = ["blueprint", "read_json", "parse_json", "conflict_error", "order_creation",
           "signed_json"]

blueprint = Blueprint("api", __name__)

_CONFLICT_STATUS = {"unknown_order": 404, "replayed_nonce": 401}


def read_json() -> Any:
    """The request body as JSON, or 400 saying why it is not."""
    return parse_json(request.get_data())


def parse_json(data: bytes) -> Any:
    """A request body as JSON, or 400 saying why it is not."""
    if not data:
        raise ApiError(400, "malformed_json", "request body is empty; expected a JSON object")
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, "malformed_json", f"request body is not JSON: {exc}") from None


def _checked(checker: Any, body: Any, *args: Any) -> dict[str, Any]:
    try:
        return checker(body, *args)
    except SchemaError as exc:
        raise ApiError(400, "invalid_request", str(exc), field=exc.path) from None


def conflict_error(exc: StoreConflict) -> ApiError:
    return ApiError(_CONFLICT_STATUS.get(exc.code, 409), exc.code, exc.message)


def signed_json(value: dict[str, Any], status: int = 200) -> ResponseReturnValue:
    return signed_response(platform_state().key, canonical_json.dumps(value), status)


def checkout_url(order_id: str) -> str:
    return checkout_url_at(platform_state().settings.get("public_url") or request.host_url,
                           order_id)


def checkout_url_at(base: str, order_id: str) -> str:
    return f"{base.rstrip('/')}/checkout/{order_id}"


@blueprint.post("/sandbox/apps")
def register_app() -> ResponseReturnValue:
    body = _checked(validation.check_app_request, read_json())
    try:
        signing.load_public_key(body["public_key_pem"])
    except ValueError as exc:
        raise ApiError(400, "invalid_request", f"public_key_pem: {exc}",
                       field="$.public_key_pem") from None
    state = platform_state()
    is_new = state.store.register_app(body["app_id"], body["public_key_pem"],
                                      body.get("merchant_name") or body["app_id"])
    return jsonify({"app_id": body["app_id"],
                    "platform_public_key_pem": signing.public_key_pem(state.key)}), (
        201 if is_new else 200)


@blueprint.get("/v1/keys")
def keys() -> ResponseReturnValue:
    key = platform_state().key
    return jsonify({"platform_public_key_pem": signing.public_key_pem(key),
                    "platform_public_key_raw": signing.public_key_raw_b64(key)})


@blueprint.post("/v1/orders")
def create_order() -> ResponseReturnValue:
    """Also served by ``order_lane`` without Flask (the hot path): same checks, same bytes."""
    app = authenticate_app(defer_nonce=True)  # recorded with the order, in one commit
    state = platform_state()
    view, status = order_creation(state, app, request.get_data(), lambda: request.host_url)
    return signed_json(view, status)


def order_creation(state: Any, app: dict[str, Any], raw_body: bytes,
                   host_url: Callable[[], str]) -> tuple[dict[str, Any], int]:
    """Create an order for an authenticated ``app`` (its nonce recorded in the same
    transaction): the answer's JSON and status, or an ``ApiError``."""
    body = _checked(validation.check_order_request, parse_json(raw_body),
                    state.settings["allowed_notify_hosts"], now_ms())
    try:
        order, is_new = state.store.create_order(
            app["app_id"], body, state.settings["order_ttl_seconds"] * 1000,
            app["nonce_use"])
    except StoreConflict as exc:
        raise conflict_error(exc) from None
    base = state.settings.get("public_url") or host_url()
    return (created_view(order, checkout_url_at(base, order["order_id"])),
            201 if is_new else 200)


def _order_or_404(app_id: str, out_trade_no: str) -> dict[str, Any]:
    order = platform_state().store.order_by_trade_no(app_id, out_trade_no)
    if order is None:
        raise ApiError(404, "unknown_order", f"no order with out_trade_no {out_trade_no!r}")
    return order


@blueprint.get("/v1/orders/<out_trade_no>")
def query_order(out_trade_no: str) -> ResponseReturnValue:
    app = authenticate_app()
    return signed_json(order_view(_order_or_404(app["app_id"], out_trade_no)))


@blueprint.post("/v1/orders/<out_trade_no>/close")
def close_order(out_trade_no: str) -> ResponseReturnValue:
    app = authenticate_app()
    order = _order_or_404(app["app_id"], out_trade_no)
    try:
        order = platform_state().store.close(order["order_id"])
    except StoreConflict as exc:
        raise conflict_error(exc) from None
    return signed_json(order_view(order))


@blueprint.post("/v1/refunds")
def refund() -> ResponseReturnValue:
    app = authenticate_app()
    state = platform_state()
    body = _checked(validation.check_refund_request, read_json())
    rate = state.settings["fee_rate"]
    try:
        row, is_new = state.store.refund(
            app["app_id"], body,
            lambda paid, before, amount: refund_fee_fen(paid, before, amount, rate))
    except StoreConflict as exc:
        raise conflict_error(exc) from None
    order = state.store.order_by_id(row["order_id"])
    assert order is not None
    fault = state.faults.take_refund_fault(app["app_id"]) if state.faults else None
    if fault is not None and fault.kind == "error_500":
        # Committed above, and yet the answer is an error: the caller cannot know.
        return signed_json({"error": "internal_error", "message": "staged fault"}, 500)
    if fault is not None:
        time.sleep(fault.seconds)  # committed; the answer comes after the caller gave up
    return signed_json(refund_view(row, order["refunded_fen"]), 201 if is_new else 200)


@blueprint.get("/v1/refunds/<out_refund_no>")
def query_refund(out_refund_no: str) -> ResponseReturnValue:
    """The refund query: what became of ``out_refund_no`` (404 when never received)."""
    app = authenticate_app()
    store = platform_state().store
    row = store.refund_by_no(app["app_id"], out_refund_no)
    if row is None:
        raise ApiError(404, "unknown_refund", f"no refund with out_refund_no "
                       f"{out_refund_no!r}")
    order = store.order_by_id(row["order_id"])
    assert order is not None
    return signed_json(refund_view(row, order["refunded_fen"]))


@blueprint.post("/sandbox/faults")
def stage_fault() -> ResponseReturnValue:
    """Stage a failure for a test (only with ``allow_faults``)."""
    faults = platform_state().faults
    if faults is None:
        raise ApiError(404, "not_found", "fault staging is off (allow_faults)")
    return jsonify(faults.stage(read_json()))


@blueprint.get("/v1/statements/<day>")
def daily_statement(day: str) -> ResponseReturnValue:
    app = authenticate_app()
    state = platform_state()
    try:
        parsed = statement.parse_day(day)
    except ValueError as exc:
        raise ApiError(400, "bad_date", f"statement day: {exc}") from None
    start, end = statement.day_bounds_ms(parsed, state.settings["statement_timezone"])
    paid, refunds = state.store.day_activity(app["app_id"], start, end)
    if request.accept_mimetypes.best_match(["text/csv", "application/json"]) == \
            "application/json" and "application/json" in request.accept_mimetypes:
        lines = statement.statement_lines(paid, refunds)
        return signed_json({"day": day, "timezone": state.settings["statement_timezone"],
                             "app_id": app["app_id"], "lines": lines,
                             "totals": statement.statement_totals(lines)})
    response = signed_response(state.key, statement.statement_csv(paid, refunds),
                               mimetype="text/csv")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="statement-{app["app_id"]}-{day}.csv"')
    return response


@blueprint.get("/sandbox/notifications")
def notifications() -> ResponseReturnValue:
    out_trade_no = request.args.get("out_trade_no")
    limit = request.args.get("limit", "100")
    if not limit.isdigit() or not 1 <= int(limit) <= 1000:
        raise ApiError(400, "invalid_request", "limit must be an integer from 1 to 1000")
    rows = platform_state().store.notifications(out_trade_no=out_trade_no, limit=int(limit))
    return jsonify({"notifications": rows})
