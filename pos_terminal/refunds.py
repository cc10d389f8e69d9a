"""Refund requests: from the vendor's terminal to the gateway, queued until it answers.

The request is a ``tracepay.refund_request/1`` record MACed with the device key
(``market_protocol.mac_record``), POSTed to ``/v1/devices/<device_id>/refunds``. It is
kept in the outbox first, so a refund asked for while the gateway is unreachable (or does
not offer the endpoint yet) is sent later, once; ``refund_no`` makes a re-send idempotent.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Protocol

import requests

from market_protocol import canonical_json, mac_record

from .errors import TerminalError
from .outbox import Outbox
from .provisioning import TerminalConfig

__all__ = ["REFUND_SCHEMA", "RefundingTerminal", "build_refund_request", "request_refund",
           "send_queued_requests"]

log = logging.getLogger(__name__)

REFUND_SCHEMA = "tracepay.refund_request/1"
_REFUNDABLE = {"paid", "partially_refunded"}


class RefundingTerminal(Protocol):
    """What refunds need of the terminal (``pos_terminal.terminal.Terminal`` is one)."""

    outbox: Outbox
    config: TerminalConfig

    @property
    def device_id(self) -> str: ...

    @property
    def device_key(self) -> bytes: ...


def build_refund_request(*, device_id: str, key_version: int, device_key: bytes, sale_id: str,
                         refund_no: str, amount_fen: int, reason: str,
                         requested_at_ms: int) -> dict[str, Any]:
    """The gateway's ``tracepay.refund_request/1`` (it refuses unknown fields)."""
    record = {"schema": REFUND_SCHEMA, "refund_no": refund_no, "device_id": device_id,
              "sale_id": sale_id, "amount_fen": amount_fen, "reason": reason,
              "requested_at_ms": requested_at_ms, "key_version": key_version, "mac": ""}
    record["mac"] = mac_record(record, device_key)
    return record


def request_refund(terminal: RefundingTerminal, sale_id: str, amount_fen: int,
                   reason: str) -> dict[str, Any]:
    """Queue a refund of a paid sale and try to send it now.

    Returns ``{"refund_no", "state": "sent"|"queued"|"refused", "answer"}``. Raises
    TerminalError when the sale cannot be refunded (unknown, unpaid, amount too large).
    """
    sale = terminal.outbox.by_sale_id(sale_id)
    if sale is None:
        raise TerminalError(f"no sale {sale_id}")
    if sale.payment_status not in _REFUNDABLE:
        raise TerminalError(f"sale {sale_id} is {sale.payment_status or 'unpaid'}: "
                            "only a paid sale can be refunded (void an unpaid one)")
    if isinstance(amount_fen, bool) or not isinstance(amount_fen, int) or amount_fen <= 0:
        raise TerminalError("the refund amount must be a positive number of fen")
    refundable = sale.total_fen - sale.refunded_fen
    if amount_fen > refundable:
        raise TerminalError(f"at most {refundable} fen of this sale can still be refunded")
    reason = (reason or "").strip()
    if not reason or len(reason) > 200:
        raise TerminalError("give a reason for the refund (1-200 characters)")
    now = time.time_ns() // 1_000_000
    refund_no = f"{sale_id}.r{now}"[:64]
    record = build_refund_request(
        device_id=terminal.device_id, key_version=terminal.config.key_version,
        device_key=terminal.device_key, sale_id=sale_id, refund_no=refund_no,
        amount_fen=amount_fen, reason=reason, requested_at_ms=now)
    terminal.outbox.add_request("refund", refund_no, record)
    send_queued_requests(terminal)
    stored = terminal.outbox.request(refund_no) or {}
    return {"refund_no": refund_no, "state": stored.get("state", "queued"),
            "answer": stored.get("answer")}


def _endpoint_missing(response: requests.Response) -> bool:
    """A gateway without the refunds route answers 404 not_found / 405: try again later."""
    if response.status_code == 405:
        return True
    if response.status_code != 404:
        return False
    try:
        return response.json().get("error") == "not_found"
    except ValueError:
        return True


def send_queued_requests(terminal: RefundingTerminal, timeout: float = 5.0) -> int:
    """POST every queued request once; returns how many the gateway took."""
    sent = 0
    base = terminal.config.gateway_url.rstrip("/")
    for request_id, kind, body in terminal.outbox.queued_requests():
        url = f"{base}/v1/devices/{terminal.device_id}/refunds"
        try:
            response = requests.post(url, data=canonical_json.dumps(body), timeout=timeout,
                                     headers={"Content-Type": "application/json"})
        except requests.RequestException as exc:
            terminal.outbox.retry_request(request_id, f"unreachable: {exc.__class__.__name__}")
            break  # the gateway is away: keep the rest for the next round
        answer = response.text[:500]
        if 200 <= response.status_code < 300:
            terminal.outbox.finish_request(request_id, "sent", answer)
            sent += 1
        elif response.status_code >= 500 or _endpoint_missing(response):
            terminal.outbox.retry_request(request_id, f"{response.status_code}: {answer}")
            break
        else:
            log.warning("gateway refused %s %s: %s", kind, body.get("refund_no"), answer)
            terminal.outbox.finish_request(request_id, "refused", answer)
    return sent
