"""Payer-code (付款码) charges: the vendor scans the shopper's payment code and the gateway
charges it at the platform.

The terminal sends one MACed request per sale (``tracepay.payer_code_charge/1``: device,
order number = the sale's ``seq``, amount, issue time, nonce, the scanned code). The
payment row is written *before* the platform is called, under the same deterministic
payment id a QR of that sale would get, so a crash or a lost answer mid-call leaves an
order the sweeper can ask about and, if it never completes, reverse. The platform answers
at once (paid, declined) or says the shopper is entering a password (``pending``): the
terminal then waits for its payment result (MQTT or ``payment-status``), and the sweeper
queries until the order settles or reverses it after ``payer_code_wait_s``.

A retried request (same sale, same nonce) returns the same payment and charges nothing
again; a declined code means a new sale (a new ``seq``) with another code, as the
platforms require a fresh merchant order number per attempt.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from market_protocol import ApiError
from market_protocol.schema import Field

from .channels.base import ChannelError, ChannelOrder, ChannelOrderStatus
from .database import Record, now_ms, transaction
from .order_creation import check_age, check_existing, payment_id_for
from .payments import PaymentService

__all__ = ["PAYER_CODE_SCHEMA", "PAYER_CODE_FIELDS", "PayerCodeCharges", "ChargeRequest"]

log = logging.getLogger(__name__)

PAYER_CODE_SCHEMA = "tracepay.payer_code_charge/1"

PAYER_CODE_FIELDS: dict[str, Field] = {
    "schema": Field(str, choices=(PAYER_CODE_SCHEMA,)),
    "device_id": Field(str, pattern=r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}"),
    "key_version": Field(int, minimum=1, maximum=255),
    "order_no": Field(int, minimum=1, maximum=2**53),
    "amount_fen": Field(int, minimum=1, maximum=2**32 - 1),
    "currency": Field(str, choices=("CNY",)),
    "issued_at": Field(int, minimum=0, maximum=2**40),
    "nonce": Field(str, pattern=r"[0-9a-f]{16,64}"),
    "auth_code": Field(str, pattern=r"[0-9]{16,24}"),
    "mac": Field(str, pattern=r"[0-9a-f]{64}"),
}

#: What each wallet's codes start with (the platforms publish these prefixes).
_WALLET_PREFIXES = {"wechatpay": ("10", "11", "12", "13", "14", "15"),
                    "alipay": ("25", "26", "27", "28", "29", "30")}


@dataclass(frozen=True)
class ChargeRequest:
    """The parts of a checked request the order checks read (as a QR payload's)."""

    device_id: str
    order_no: int
    amount_fen: int
    currency: str
    issued_at: int
    nonce_hex: str

    @classmethod
    def of(cls, body: dict[str, Any]) -> ChargeRequest:
        return cls(body["device_id"], body["order_no"], body["amount_fen"],
                   body["currency"], body["issued_at"], body["nonce"])


class PayerCodeCharges:
    def __init__(self, payments: PaymentService) -> None:
        self.payments = payments
        self.db = payments.db

    def channel_for(self, auth_code: str) -> str:
        """The sandbox takes every code; otherwise the wallet the code's prefix names."""
        channels = self.payments.channels
        if "sandbox" in channels:
            return "sandbox"
        for name, prefixes in _WALLET_PREFIXES.items():
            if auth_code.startswith(prefixes) and hasattr(channels.get(name), "pay_by_code"):
                return name
        raise ApiError(422, "unsupported_payer_code", "no configured channel takes this "
                       "payment code; ask the shopper for another wallet or a QR payment")

    def charge(self, device: Record, body: dict[str, Any]) -> tuple[Record, str]:
        """The payment for this sale and what happened: ``paid``, ``pending`` (the shopper
        is confirming), or an ApiError for a declined or refused code."""
        request = ChargeRequest.of(body)
        check_age(request, self.payments.clock(), self.payments.settings)
        existing = self.db.conn.execute(
            "SELECT * FROM payments WHERE device_id = ? AND order_no = ?",
            (request.device_id, request.order_no)).fetchone()
        if existing is not None:
            return self._again(existing, request), "retried"
        voided = self.db.conn.execute(
            "SELECT 1 FROM sales WHERE device_id = ? AND seq = ? AND voided_at_ms IS NOT "
            "NULL", (request.device_id, request.order_no)).fetchone()
        if voided:
            raise ApiError(410, "sale_voided", "this sale was cancelled on the terminal")
        channel_name = self.channel_for(body["auth_code"])
        payment_id = payment_id_for(self.payments.registry.master_key, request)
        if not self._record(payment_id, request, device, channel_name):
            stored = self.payments.get(payment_id)
            assert stored is not None
            return self._again(stored, request), "retried"
        return self._call(payment_id, request, device, channel_name, body["auth_code"])

    def _again(self, payment: Record, request: ChargeRequest) -> Record:
        """A retried request: the same sale may only get its own payment back."""
        if payment["method"] != "payer_code":
            raise ApiError(409, "order_conflict", "this sale is being paid by QR code")
        try:
            check_existing(payment, request)
        except ApiError as exc:
            if exc.code != "already_paid":
                raise
        return payment

    def _record(self, payment_id: str, request: ChargeRequest, device: Record,
                channel_name: str) -> bool:
        now = now_ms()
        conn = self.db.conn
        with transaction(conn):
            cursor = conn.execute(
                "INSERT INTO payments (payment_id, device_id, merchant_id, order_no, nonce, "
                "amount_fen, currency, qr_issued_at, status, channel, created_at_ms, "
                "updated_at_ms, method) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'created', ?, ?, ?, "
                "'payer_code') ON CONFLICT DO NOTHING",
                (payment_id, request.device_id, device["merchant_id"], request.order_no,
                 request.nonce_hex, request.amount_fen, request.currency, request.issued_at,
                 channel_name, now, now))
            if cursor.rowcount != 1:
                return False
            conn.execute("INSERT INTO payment_events (payment_id, from_status, to_status, "
                         "source, accepted, reason, at_ms) VALUES (?, 'none', 'created', "
                         "'payer_code', 1, '', ?)", (payment_id, now))
        return True

    def _call(self, payment_id: str, request: ChargeRequest, device: Record,
              channel_name: str, auth_code: str) -> tuple[Record, str]:
        channel = self.payments.channels[channel_name]
        settings = self.payments.settings
        order = ChannelOrder(
            out_trade_no=payment_id, amount_fen=request.amount_fen,
            currency=request.currency,
            subject=f"{device['merchant_name']} #{request.order_no}"[:120],
            notify_url=f"{settings['public_url']}/v1/notify/{channel_name}", return_url="")
        try:
            status = channel.pay_by_code(order, auth_code)  # type: ignore[attr-defined]
        except ChannelError as exc:
            if not exc.definite:
                # Unknown outcome (timeout, lost answer): the sweeper asks the platform.
                log.warning("payer-code charge %s: %s; left for the sweeper", payment_id,
                            exc.code)
                self._move(payment_id, "pending", "payer_code:unknown")
                return self._current(payment_id), "pending"
            self._move(payment_id, "failed", f"payer_code:{exc.code}")
            raise ApiError(422, exc.code, exc.message or "the payment code was refused",
                           payment_id=payment_id) from None
        return self._settle(payment_id, status)

    def _settle(self, payment_id: str, status: ChannelOrderStatus) -> tuple[Record, str]:
        if status.status == "paid":
            self.payments.apply_channel_status(payment_id, status, "payer_code")
            return self._current(payment_id), "paid"
        if status.status == "pending":
            self._move(payment_id, "pending", "payer_code:userpaying")
            return self._current(payment_id), "pending"
        self._move(payment_id, "failed", "payer_code:declined")
        raise ApiError(402, "payment_declined", "the shopper's wallet declined the payment; "
                       "ring up the sale again and ask for another code or wallet",
                       payment_id=payment_id)

    def _move(self, payment_id: str, target: str, source: str) -> None:
        conn = self.db.conn
        with transaction(conn):
            self.payments.apply_in(conn, payment_id, target, source)

    def _current(self, payment_id: str) -> Record:
        payment = self.payments.get(payment_id)
        assert payment is not None
        return payment
