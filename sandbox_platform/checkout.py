"""The hosted checkout page a shopper's phone opens: Pay or Cancel one order.

Browsers get HTML and a 303 back to the merchant's ``return_url``; clients that send
``Accept: application/json`` (the headless demo shopper) get JSON instead.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

from flask import Blueprint, jsonify, redirect, render_template, request
from flask.typing import ResponseReturnValue

from market_protocol.http_errors import ApiError
from market_protocol.money import format_fen

from .api import conflict_error
from .fees import fee_fen
from .order_views import new_notification, order_view
from .state import platform_state
from .store import StoreConflict
from .validation import PAYER_ID_PATTERN

__all__ = ["blueprint"]

blueprint = Blueprint("checkout", __name__, template_folder="templates")

_MESSAGES = {"PAID": "Paid", "REFUNDED": "Paid, then refunded", "CLOSED": "This order is closed"}


def _wants_json() -> bool:
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json" and "application/json" in request.accept_mimetypes


def _order(order_id: str) -> dict[str, Any]:
    order = platform_state().store.order_by_id(order_id)
    if order is None:
        raise ApiError(404, "unknown_order", f"no order {order_id!r}")
    return order


def _page(order: dict[str, Any], status: int = 200, message: str | None = None) -> ResponseReturnValue:
    app = platform_state().store.app(order["app_id"])
    html = render_template(
        "checkout.html", order=order, amount=format_fen(order["amount_fen"]),
        merchant_name=app["merchant_name"] if app else order["app_id"],
        payer_id=f"buyer-{secrets.token_hex(2)}",
        message=message or _MESSAGES.get(order["status"]))
    return html, status, {"Content-Type": "text/html; charset=utf-8",
                          "Cache-Control": "no-store"}


@blueprint.get("/checkout/<order_id>")
def show(order_id: str) -> ResponseReturnValue:
    order = _order(order_id)
    if _wants_json():
        return jsonify(order_view(order))
    return _page(order)


def _payer_id() -> str:
    if request.is_json:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise ApiError(400, "malformed_json", "expected a JSON object with payer_id")
        payer_id = body.get("payer_id")
    else:
        payer_id = request.form.get("payer_id")
    if payer_id is None or payer_id == "":
        return f"buyer-{secrets.token_hex(2)}"
    if not isinstance(payer_id, str) or not re.fullmatch(PAYER_ID_PATTERN, payer_id):
        raise ApiError(400, "bad_payer_id",
                       f"payer_id must match {PAYER_ID_PATTERN}")
    return payer_id


@blueprint.post("/checkout/<order_id>/pay")
def pay(order_id: str) -> ResponseReturnValue:
    state = platform_state()
    order = _order(order_id)
    payer_id = _payer_id()
    schedule = state.settings["notify_schedule"]

    try:
        paid = state.store.pay(order_id, payer_id,
                               fee_fen(order["amount_fen"], state.settings["fee_rate"]),
                               new_notification, int(schedule[0] * 1000))
    except StoreConflict as exc:
        if _wants_json():
            raise conflict_error(exc) from None
        current = _order(order_id)
        if exc.code == "already_paid":
            return redirect(current["return_url"], 303)
        return _page(current, 409, exc.message)
    if _wants_json():
        return jsonify({**order_view(paid), "return_url": paid["return_url"]})
    return redirect(paid["return_url"], 303)


@blueprint.post("/checkout/<order_id>/cancel")
def cancel(order_id: str) -> ResponseReturnValue:
    order = _order(order_id)
    try:
        closed = platform_state().store.close(order["order_id"])
    except StoreConflict as exc:
        if _wants_json():
            raise conflict_error(exc) from None
        return _page(_order(order_id), 409, exc.message)
    if _wants_json():
        return jsonify({**order_view(closed), "return_url": closed["return_url"]})
    return redirect(closed["return_url"], 303)
