"""Payment results over HTTP while the MQTT link is down.

Results normally come down the terminal's MQTT results topic. When the broker cannot be
reached (the market's network is down, the shopper paid over 4G), the customer display
would wait although the payment went through; so while the uplink is disconnected the
terminal asks the gateway directly for the sales still waiting for a result, with a
request MACed by its key, and applies the answers exactly as MQTT results: same schema,
same MAC check, same "newer wins" rule in the outbox.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import requests

from market_protocol import (
    SchemaError,
    canonical_json,
    check_payment_result,
    mac_record,
    verify_record_mac,
)

from .outbox import Outbox, StoredSale
from .provisioning import TerminalConfig

__all__ = ["STATUS_SCHEMA", "build_status_request", "poll_payment_status"]

log = logging.getLogger(__name__)

STATUS_SCHEMA = "tracepay.status_request/1"
#: Sales younger than this that still wait for a result are asked about.
LOOK_BACK_MS = 2 * 3600 * 1000
MAX_SEQS = 50


def build_status_request(*, device_id: str, key_version: int, device_key: bytes,
                         seqs: list[int], requested_at_ms: int) -> dict[str, Any]:
    record = {"schema": STATUS_SCHEMA, "device_id": device_id, "key_version": key_version,
              "seqs": seqs, "requested_at_ms": requested_at_ms, "mac": ""}
    record["mac"] = mac_record(record, device_key)
    return record


def poll_payment_status(outbox: Outbox, config: TerminalConfig, device_key: bytes,
                        on_result: Callable[[StoredSale, dict[str, Any]], None], *,
                        now_ms: int | None = None, timeout: float = 5.0) -> int:
    """Ask once; returns how many sales changed. Network trouble is logged, not raised."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    seqs = outbox.awaiting_result(now_ms - LOOK_BACK_MS, MAX_SEQS)
    if not seqs:
        return 0
    body = build_status_request(device_id=config.device_id, key_version=config.key_version,
                                device_key=device_key, seqs=seqs, requested_at_ms=now_ms)
    url = f"{config.gateway_url.rstrip('/')}/v1/devices/{config.device_id}/payment-status"
    try:
        response = requests.post(url, data=canonical_json.dumps(body), timeout=timeout,
                                 headers={"Content-Type": "application/json"})
    except requests.RequestException as exc:
        log.info("payment status over HTTP unavailable too: %s", exc)
        return 0
    if response.status_code != 200:
        log.warning("payment status request refused: %s %s", response.status_code,
                    response.text[:200])
        return 0
    changed = 0
    for item in (response.json() or {}).get("results", []):
        try:
            result = check_payment_result(item)
        except (SchemaError, ValueError) as exc:
            log.warning("ignored a malformed payment result over HTTP: %s", exc)
            continue
        if result["device_id"] != config.device_id or not verify_record_mac(result,
                                                                               device_key):
            log.warning("ignored a payment result over HTTP with a bad MAC (seq %s)",
                        result.get("seq"))
            continue
        sale, was_changed = outbox.record_result(result)
        if sale is not None and was_changed:
            changed += 1
            on_result(sale, result)
    return changed
