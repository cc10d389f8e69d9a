"""Payer codes (付款码): the vendor scans the shopper's payment code and the gateway charges it.

For a sale already rung up (its QR perhaps on the display), the scanned code is sent as a
``tracepay.payer_code_charge/1`` MACed with the device key to the gateway's
``/v1/devices/<id>/payer-code-charges``. The request is built from the stored sale alone
(its seq, amount, issue time and nonce), so sending it again after a lost answer is the
same request and charges nothing twice. The outcome is only what the gateway said: the
sale turns paid on the MACed payment result (MQTT, or fetched over HTTP at once here), the
same as every other payment.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any, Protocol

import requests

from market_protocol import canonical_json, mac_record
from market_protocol.messages import qr_amount_fen

from .errors import TerminalError
from .outbox import Outbox
from .provisioning import TerminalConfig

__all__ = ["PAYER_CODE_SCHEMA", "PayerCodeOutcome", "looks_like_payer_code",
           "build_payer_code_request", "charge_payer_code"]

log = logging.getLogger(__name__)

PAYER_CODE_SCHEMA = "tracepay.payer_code_charge/1"
_CODE = re.compile(r"[0-9]{16,24}")
_UNPAID = {None, "", "created", "pending"}


class ChargingTerminal(Protocol):
    outbox: Outbox
    config: TerminalConfig

    @property
    def device_id(self) -> str: ...

    @property
    def device_key(self) -> bytes: ...

    def refresh_results(self) -> None: ...


@dataclass(frozen=True)
class PayerCodeOutcome:
    """``paid``, ``waiting`` (the shopper confirms on their phone), ``declined`` (ring the
    sale up again, another code), ``refused`` (the request itself was refused) or
    ``unreachable`` (nothing known: send the same code again)."""

    state: str
    message: str
    payment_id: str | None = None


def looks_like_payer_code(text: str) -> bool:
    """What a wallet's payment code is: 16-24 digits (WeChat 10-15…, Alipay 25-30…)."""
    return bool(_CODE.fullmatch(text.strip()))


def build_payer_code_request(record: dict[str, Any], *, key_version: int,
                             device_key: bytes, auth_code: str) -> dict[str, Any]:
    """The gateway's ``tracepay.payer_code_charge/1`` for a stored sale record."""
    body = {"schema": PAYER_CODE_SCHEMA, "device_id": record["device_id"],
            "key_version": key_version, "order_no": record["seq"],
            "amount_fen": qr_amount_fen(record), "currency": record["currency"],
            "issued_at": record["qr_issued_at"], "nonce": record["qr_nonce"],
            "auth_code": auth_code, "mac": ""}
    body["mac"] = mac_record(body, device_key)
    return body


def charge_payer_code(terminal: ChargingTerminal, sale_id: str, auth_code: str,
                      timeout: float = 20.0) -> PayerCodeOutcome:
    """Charge ``auth_code`` for an unpaid sale; raises TerminalError for a sale that cannot
    be charged (unknown, paid, void, all cash) or a scan that is not a payment code."""
    auth_code = auth_code.strip()
    if not looks_like_payer_code(auth_code):
        raise TerminalError("that is not a payment code (16-24 digits from the shopper's "
                            "wallet)")
    sale = terminal.outbox.by_sale_id(sale_id)
    if sale is None:
        raise TerminalError(f"no sale {sale_id}")
    if sale.sale_status == "void":
        raise TerminalError("this sale was voided")
    if sale.payment_status not in _UNPAID:
        raise TerminalError(f"this sale is already {sale.payment_status}")
    if qr_amount_fen(sale.record) <= 0:
        raise TerminalError("nothing is left to pay on this sale")
    body = build_payer_code_request(sale.record, key_version=terminal.config.key_version,
                                    device_key=terminal.device_key, auth_code=auth_code)
    url = (f"{terminal.config.gateway_url.rstrip('/')}/v1/devices/{terminal.device_id}/"
           "payer-code-charges")
    try:
        response = requests.post(url, data=canonical_json.dumps(body), timeout=timeout,
                                 headers={"Content-Type": "application/json"})
    except requests.RequestException as exc:
        return PayerCodeOutcome("unreachable", f"the gateway did not answer "
                                f"({exc.__class__.__name__}); scan the same code again")
    outcome = _outcome(response)
    if outcome.state in ("paid", "waiting"):
        terminal.refresh_results()  # the MACed result, now rather than at the next poll
    return outcome


def _outcome(response: requests.Response) -> PayerCodeOutcome:
    try:
        answer = response.json()
    except ValueError:
        answer = {}
    if not isinstance(answer, dict):
        answer = {}
    payment_id = answer.get("payment_id")
    if response.status_code == 200 and answer.get("status") == "paid":
        return PayerCodeOutcome("paid", "paid", payment_id)
    if response.status_code in (200, 202):
        return PayerCodeOutcome("waiting", "the shopper is confirming on their phone",
                                payment_id)
    message = str(answer.get("message") or response.text[:200])
    if response.status_code == 402:
        return PayerCodeOutcome("declined", message, payment_id)
    if response.status_code >= 500:
        return PayerCodeOutcome("unreachable", message, payment_id)
    log.warning("gateway refused a payer-code charge: %s %s", response.status_code, message)
    return PayerCodeOutcome("refused", message, payment_id)
