"""The scan landing ``GET /q/<token>`` (docs/protocol.md section 4) and the channel choice.

Phones get HTML (the consumer app's pay page when one is configured, otherwise our own),
API clients that ask for JSON get JSON. Refusals carry the agreed codes either way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from flask import Blueprint, Response, current_app, jsonify, redirect, render_template, request

from market_protocol import ApiError, format_fen

from .channel_choice import choose_channel
from .database import Record
from .rate_limits import GatewayLimits
from .requests_in import client_key, gateway
from .wiring import Gateway

__all__ = ["blueprint", "scan_outcome", "payment_json", "ScanOutcome"]

blueprint = Blueprint("scan", __name__)

CHANNEL_LABELS = {"sandbox": "Sandbox Pay", "alipay": "Alipay 支付宝",
                  "wechatpay": "WeChat Pay 微信支付"}


def _wants_json() -> bool:
    if request.headers.get("Accept") == "application/json":
        return True  # what API clients send: no need to parse quality values
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json" or request.args.get("format") == "json"


def _html_error(exc: ApiError) -> Any:
    """The refusal as a page in the shopper's language; a 429 says when to try again and
    the page retries by itself once (``?retried=1`` marks the second try)."""
    lang = request.args.get("lang") or request.accept_languages.best_match(["zh", "en"])
    retry_after = exc.extra.get("retry_after_s")
    headers = {"Retry-After": str(retry_after)} if retry_after else {}
    return render_template("scan_error.html", code=exc.code, message=exc.message,
                           retry_after_s=retry_after, lang="zh" if lang == "zh" else "en",
                           retried=request.args.get("retried") == "1"), exc.status, headers


@blueprint.get("/q/<token>")
def scan(token: str) -> Any:
    wants_json = _wants_json()
    try:
        return _scan(token, wants_json)
    except ApiError as exc:
        if wants_json:
            raise
        return _html_error(exc)


def _scan(token: str, wants_json: bool) -> Any:
    gw = gateway()
    outcome = scan_outcome(gw, token, request.headers.get("User-Agent"),
                           request.args.get("channel"), limits=current_app.extensions["limits"],
                           client=client_key())
    if outcome.payment is None:
        payload, device = outcome.payload, outcome.device
        if wants_json:
            return jsonify(status="choose_channel", channels=sorted(gw.channels),
                           amount_fen=payload.amount_fen, currency=payload.currency), 300
        return render_template(
            "choose_channel.html", token=token, merchant=device["merchant_name"],
            amount=format_fen(payload.amount_fen), labels=CHANNEL_LABELS,
            channels=sorted(gw.channels))
    payment = outcome.payment
    if wants_json:
        return Response(payment_json(gw, outcome), mimetype="application/json")
    consumer = gw.settings.get("consumer_url")
    if consumer:
        return redirect(f"{consumer}/pay/{payment['payment_id']}", code=303)
    view = gw.payments.view(payment, device=outcome.device)
    return render_template("scan.html", payment=view, format_fen=format_fen,
                           label=CHANNEL_LABELS.get(payment["channel"], payment["channel"]))


@dataclass(frozen=True)
class ScanOutcome:
    """A scanned code after every check: its payment (its order created at the channel),
    or no payment yet because the shopper must choose a channel."""

    payload: Any
    device: Any
    payment: Record | None


def scan_outcome(gw: Gateway, token: str, user_agent: str | None,
                 requested: str | None, *, limits: GatewayLimits, client: str) -> ScanOutcome:
    """The scan landing's work, from plain request values (the Flask view and the scan
    lane both call it, so both count in the same limits); refusals are ``ApiError``."""
    limits.before_scan(client, token)
    # The code itself first: a forged, replayed, expired or voided QR gets its own answer
    # whatever the state of the channels.
    try:
        checked = gw.payments.verify_scan(token)
    except ApiError as exc:
        if exc.status < 500:
            limits.scan_refused(client)
        raise
    payload, device, existing = checked
    limits.verified_scan(payload.device_id)
    if requested is not None and requested not in gw.channels:
        raise ApiError(400, "unknown_channel", f"channel must be one of "
                       f"{', '.join(sorted(gw.channels)) or '(none configured)'}")
    if not gw.channels:
        raise ApiError(503, "channel_unavailable", "no payment channel is configured")
    channel = choose_channel(user_agent, gw.channels, requested)
    if channel is None:
        if existing is None:
            return ScanOutcome(payload, device, None)
        channel = existing["channel"]
    payment, device = gw.payments.scan(token, channel, checked)
    return ScanOutcome(payload, device, payment)


def payment_json(gw: Gateway, outcome: ScanOutcome) -> bytes:
    """The JSON answer for a scanned code's payment."""
    view = gw.payments.view(outcome.payment, device=outcome.device)  # type: ignore[arg-type]
    # orjson: the hot path's answer, several times cheaper than Flask's json encoder.
    return orjson.dumps(view, option=orjson.OPT_SORT_KEYS)
