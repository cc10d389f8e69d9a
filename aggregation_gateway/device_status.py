"""Payment results over HTTP, for a terminal whose MQTT link is down.

Results normally reach a terminal over MQTT; when the market's broker is unreachable the
customer display would wait forever although the shopper has paid. The terminal then
asks here, with a request MACed by its device key, and gets the same MACed
``tracepay.payment_result/1`` records it would have received on its results topic.
"""

from __future__ import annotations

from typing import Any

from market_protocol import ApiError, SchemaError, verify_record_mac
from market_protocol.schema import Field, check

from .database import now_ms
from .trades import build_payment_result
from .wiring import Gateway

__all__ = ["STATUS_REQUEST_SCHEMA", "STATUS_REQUEST_FIELDS", "payment_results"]

STATUS_REQUEST_SCHEMA = "tracepay.status_request/1"
#: A request older or newer than this is refused (a captured one is not replayed later).
REQUEST_WINDOW_MS = 5 * 60 * 1000
MAX_SEQS = 50

STATUS_REQUEST_FIELDS: dict[str, Field] = {
    "schema": Field(str, choices=(STATUS_REQUEST_SCHEMA,)),
    "device_id": Field(str, pattern=r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}"),
    "key_version": Field(int, minimum=1, maximum=255),
    "seqs": Field(list),
    "requested_at_ms": Field(int, minimum=0),
    "mac": Field(str, pattern=r"[0-9a-f]{64}"),
}


def payment_results(gw: Gateway, device_id: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    """The current result of each asked-for sale that has a payment (others are left out)."""
    try:
        check(STATUS_REQUEST_FIELDS, body)
    except SchemaError as exc:
        raise ApiError(400, "invalid_request", str(exc)) from None
    seqs = body["seqs"]
    if (not 1 <= len(seqs) <= MAX_SEQS or any(
            not isinstance(seq, int) or isinstance(seq, bool) or not 1 <= seq < 2**53
            for seq in seqs)):
        raise ApiError(400, "invalid_request", f"seqs must be 1 to {MAX_SEQS} sale numbers")
    if body["device_id"] != device_id:
        raise ApiError(403, "device_mismatch", "the request is for another device")
    device = gw.registry.get(device_id)
    if device is None:
        raise ApiError(404, "unknown_device", "no such device")
    if device["status"] == "revoked":
        raise ApiError(403, "device_revoked", "this terminal has been revoked")
    key = gw.registry.device_key(device_id, device["key_version"])
    if body["key_version"] != device["key_version"] or not verify_record_mac(body, key):
        raise ApiError(403, "bad_mac", "the status request's MAC does not verify")
    if abs(now_ms() - body["requested_at_ms"]) > REQUEST_WINDOW_MS:
        raise ApiError(403, "stale_request", "the status request is too old or from the "
                       "future: check the terminal's clock")
    marks = ",".join("?" for _ in seqs)
    rows = gw.db.conn.execute(
        f"SELECT p.*, (SELECT sale_id FROM sales s WHERE s.device_id = p.device_id AND "
        f"s.seq = p.order_no LIMIT 1) AS sale_id FROM payments p WHERE p.device_id = ? AND "
        f"p.order_no IN ({marks}) ORDER BY p.order_no", (device_id, *seqs)).fetchall()
    return [build_payment_result(row, key, row["sale_id"], row["updated_at_ms"])
            for row in rows]
