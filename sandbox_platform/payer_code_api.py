"""Pay-by-code routes: the merchant's signed ``/v1/orders/pay-by-code`` and
``/v1/orders/<out_trade_no>/reverse``, and the sandbox's stand-in for the shopper's wallet
(``/sandbox/payer-codes``: issue a code, then confirm or cancel on the "phone")."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request
from flask.typing import ResponseReturnValue

from market_protocol.http_errors import ApiError
from market_protocol.schema import SchemaError, check

from . import validation
from .api import conflict_error, parse_json, read_json, signed_json
from .fees import fee_fen, refund_fee_fen
from .order_views import new_notification, order_view
from .payer_code_store import PayerCodes
from .request_auth import authenticate_app
from .state import platform_state
from .store import StoreConflict

__all__ = ["blueprint"]

blueprint = Blueprint("payer_codes", __name__)

#: Refusals of a code are the shopper's to fix (a fresh code, another wallet): 422.
_CODE_ERRORS = {"payer_code_invalid", "payer_code_used", "payer_code_expired",
                "unknown_payer_code"}


def _codes() -> PayerCodes:
    return PayerCodes(platform_state().store)


def _conflict(exc: StoreConflict) -> ApiError:
    if exc.code in _CODE_ERRORS:
        return ApiError(422, exc.code, exc.message)
    return conflict_error(exc)


def _pay_now(order_id: str, payer_id: str) -> dict[str, Any]:
    """The platform's one paid path: PAID and its notification in one transaction."""
    state = platform_state()
    order = state.store.order_by_id(order_id)
    assert order is not None
    return state.store.pay(order_id, payer_id,
                           fee_fen(order["amount_fen"], state.settings["fee_rate"]),
                           new_notification, int(state.settings["notify_schedule"][0] * 1000))


@blueprint.post("/v1/orders/pay-by-code")
def pay_by_code() -> ResponseReturnValue:
    """200 with the order: PAID, WAIT_PAY + trade_state USERPAYING (poll, then reverse if
    it never completes), or CLOSED with fail_reason (declined, not enough money)."""
    app = authenticate_app(defer_nonce=True)
    state = platform_state()
    try:
        body = validation.check_pay_by_code_request(parse_json(request.get_data()),
                                                    state.settings["allowed_notify_hosts"])
    except SchemaError as exc:
        raise ApiError(400, "invalid_request", str(exc)) from None
    try:
        order, _ = _codes().pay(app["app_id"], body, app["nonce_use"],
                                state.settings["order_ttl_seconds"] * 1000, _pay_now)
    except StoreConflict as exc:
        raise _conflict(exc) from None
    return signed_json(order_view(order))


@blueprint.post("/v1/orders/<out_trade_no>/reverse")
def reverse(out_trade_no: str) -> ResponseReturnValue:
    """Undo a charge whose outcome the merchant gave up waiting for: a waiting order is
    closed, a paid one refunded in full. Safe to repeat."""
    app = authenticate_app()
    state = platform_state()
    rate = state.settings["fee_rate"]

    def refund_in_full(order: dict[str, Any]) -> None:
        state.store.refund(app["app_id"], {
            "out_trade_no": out_trade_no, "out_refund_no": f"reverse-{out_trade_no}"[:64],
            "amount_fen": order["amount_fen"] - order["refunded_fen"], "reason": "reversed"},
            lambda paid, before, amount: refund_fee_fen(paid, before, amount, rate))

    try:
        order = _codes().reverse(app["app_id"], out_trade_no, refund_in_full)
    except StoreConflict as exc:
        raise _conflict(exc) from None
    return signed_json(order_view(order))


@blueprint.post("/sandbox/payer-codes")
def issue_code() -> ResponseReturnValue:
    """A code as a shopper's wallet would show it; ``behaviour`` says what it will do."""
    try:
        body = check(validation.PAYER_CODE_REQUEST, read_json())
    except SchemaError as exc:
        raise ApiError(400, "invalid_request", str(exc)) from None
    return jsonify(_codes().issue(body["payer_id"], body.get("behaviour") or "pay")), 201


@blueprint.post("/sandbox/payer-codes/<auth_code>/confirm")
def confirm(auth_code: str) -> ResponseReturnValue:
    """The shopper enters the password on their phone: the waiting order is paid."""
    codes = _codes()
    try:
        order = codes.waiting_order(auth_code)
        paid = _pay_now(order["order_id"], order["payer_id"])
    except StoreConflict as exc:
        raise _conflict(exc) from None
    codes.settle(auth_code, "paid")
    return jsonify(order_view(paid))


@blueprint.post("/sandbox/payer-codes/<auth_code>/cancel")
def cancel(auth_code: str) -> ResponseReturnValue:
    """The shopper cancels on their phone: the waiting order closes unpaid."""
    try:
        return jsonify(order_view(_codes().cancel(auth_code)))
    except StoreConflict as exc:
        raise _conflict(exc) from None
