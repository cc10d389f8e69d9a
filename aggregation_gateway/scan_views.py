"""The scan landing ``GET /q/<token>`` (docs/protocol.md section 4) and the channel choice.

Phones get HTML (the consumer app's pay page when one is configured, otherwise our own),
API clients that ask for JSON get JSON. Refusals carry the agreed codes either way.
"""

from __future__ import annotations

from typing import Any

import orjson
from flask import Blueprint, Response, jsonify, redirect, render_template, request

from market_protocol import ApiError, format_fen

from .channel_choice import choose_channel
from .requests_in import gateway, rate_limit

__all__ = ["blueprint"]

blueprint = Blueprint("scan", __name__)

CHANNEL_LABELS = {"sandbox": "Sandbox Pay", "alipay": "Alipay 支付宝",
                  "wechatpay": "WeChat Pay 微信支付"}


def _wants_json() -> bool:
    if request.headers.get("Accept") == "application/json":
        return True  # what API clients send: no need to parse quality values
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json" or request.args.get("format") == "json"


def _html_error(exc: ApiError) -> Any:
    return render_template("scan_error.html", code=exc.code, message=exc.message), exc.status


@blueprint.get("/q/<token>")
def scan(token: str) -> Any:
    wants_json = _wants_json()
    try:
        rate_limit("scan_limiter")
        return _scan(token, wants_json)
    except ApiError as exc:
        if wants_json:
            raise
        return _html_error(exc)


def _scan(token: str, wants_json: bool) -> Any:
    gw = gateway()
    # The code itself first: a forged, replayed, expired or voided QR gets its own answer
    # whatever the state of the channels.
    checked = gw.payments.verify_scan(token)
    payload, device, existing = checked
    requested = request.args.get("channel")
    if requested is not None and requested not in gw.channels:
        raise ApiError(400, "unknown_channel", f"channel must be one of "
                       f"{', '.join(sorted(gw.channels)) or '(none configured)'}")
    if not gw.channels:
        raise ApiError(503, "channel_unavailable", "no payment channel is configured")
    channel = choose_channel(request.headers.get("User-Agent"), gw.channels, requested)
    if channel is None:
        if existing is None:
            if wants_json:
                return jsonify(status="choose_channel", channels=sorted(gw.channels),
                               amount_fen=payload.amount_fen, currency=payload.currency), 300
            return render_template(
                "choose_channel.html", token=token, merchant=device["merchant_name"],
                amount=format_fen(payload.amount_fen), labels=CHANNEL_LABELS,
                channels=sorted(gw.channels))
        channel = existing["channel"]
    payment, device = gw.payments.scan(token, channel, checked)
    view = gw.payments.view(payment, device=device)
    if wants_json:
        # orjson: the hot path's answer, several times cheaper than Flask's json encoder.
        return Response(orjson.dumps(view, option=orjson.OPT_SORT_KEYS),
                        mimetype="application/json")
    consumer = gw.settings.get("consumer_url")
    if consumer:
        return redirect(f"{consumer}/pay/{payment['payment_id']}", code=303)
    return render_template("scan.html", payment=view, format_fen=format_fen,
                           label=CHANNEL_LABELS.get(payment["channel"], payment["channel"]))
