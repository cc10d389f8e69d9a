"""The scan landing's checks on an order and its creation at the payment channel.

Apart from ``payments`` (which records what the channel answered) because these are the
parts that decide whether a scanned code may become an order at all: a replayed, expired,
conflicting or paid code is refused here, and the channel is asked for an order under a
payment id that is the same for every phone scanning one code.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import sqlite3
from collections.abc import Mapping
from typing import Any

from market_protocol import ApiError

from .channels.base import ChannelError, ChannelOrder, ChannelSignatureError, PaymentChannel
from .database import Record
from .payment_states import FINAL_PAID

__all__ = ["payment_id_for", "check_existing", "check_age", "create_at_channel",
           "close_orphan"]

log = logging.getLogger(__name__)


def payment_id_for(master_key: bytes, payload: Any) -> str:
    """Deterministic for one QR, unguessable without the master key: two phones
    scanning the same code at once ask the channel for the same order."""
    message = (f"tracepay-payment-id/1|{payload.device_id}|{payload.order_no}|"
               f"{payload.nonce_hex}|{payload.amount_fen}|{payload.currency}").encode()
    return "p" + hmac.new(master_key, message, hashlib.sha256).hexdigest()[:24]


def check_existing(payment: Record, payload: Any) -> None:
    """A code whose order number already has a payment: the same code may go on (a
    second scan), another code, a paid or a dead order may not."""
    if (payment["nonce"] != payload.nonce_hex or payment["amount_fen"] != payload.amount_fen
            or payment["currency"] != payload.currency):
        raise ApiError(409, "order_conflict", "this order number was already used for "
                       "another amount or code")
    if payment["status"] in FINAL_PAID:
        raise ApiError(409, "already_paid", "this order has already been paid",
                       payment_id=payment["payment_id"])
    if payment["status"] in ("failed", "expired"):
        raise ApiError(410, "qr_expired", f"this order is {payment['status']}; ask the "
                       "vendor for a new code", payment_id=payment["payment_id"])


def check_age(payload: Any, now_s: float, settings: Mapping[str, Any]) -> None:
    if payload.issued_at > now_s + settings["qr_clock_skew_s"]:
        raise ApiError(400, "bad_issue_time", "the QR code was issued in the future; "
                       "check the terminal's clock")
    if now_s - payload.issued_at > settings["qr_lifetime_s"]:
        raise ApiError(410, "qr_expired", "this QR code has expired; ask the vendor for "
                       "a new one")


def create_at_channel(channels: Mapping[str, PaymentChannel], settings: Mapping[str, Any],
                      payment_id: str, payload: Any, device: sqlite3.Row,
                      channel_name: str) -> Any:
    """The channel's order for ``payment_id`` (idempotent there by that number)."""
    channel = channels.get(channel_name)
    if channel is None:
        raise ApiError(503, "channel_unavailable", f"channel {channel_name} is not "
                       "configured")
    base = settings["public_url"]
    consumer = settings.get("consumer_url") or ""
    return_url = (f"{consumer}/receipt/{payment_id}" if consumer
                  else f"{base}/v1/payments/{payment_id}/return")
    subject = f"{device['merchant_name']} #{payload.order_no}"
    try:
        return channel.create_order(ChannelOrder(
            out_trade_no=payment_id, amount_fen=payload.amount_fen,
            currency=payload.currency, subject=subject[:120],
            notify_url=f"{base}/v1/notify/{channel_name}", return_url=return_url,
            expires_at_ms=(payload.issued_at + settings["qr_lifetime_s"]) * 1000))
    except ChannelSignatureError:
        log.error("channel %s answered order creation with a bad signature", channel_name)
        raise ApiError(502, "channel_error", "the payment platform's answer did not "
                       "verify; try again") from None
    except ChannelError as exc:
        log.warning("channel %s refused order %s: %s", channel_name, payment_id, exc.code)
        raise ApiError(502, "channel_error", "the payment platform is unavailable; "
                       "try again in a moment") from None


def close_orphan(channels: Mapping[str, PaymentChannel], channel_name: str,
                 payment_id: str) -> None:
    """Another code with the same order number won the race: close our order."""
    channel = channels.get(channel_name)
    if channel is not None:
        with contextlib.suppress(ChannelError):
            channel.close_order(payment_id)
