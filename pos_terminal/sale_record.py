"""Build the ``tracepay.sale/1`` record and its dynamic QR: pure, no clock or randomness inside.

The caller supplies the time, nonce and sequence number, so the same inputs always give the
same record and QR (the tests rely on it) and the I/O shell decides where they come from.
"""

from __future__ import annotations

import secrets
from typing import Any

from market_protocol import (
    SALE_SCHEMA,
    QRPayload,
    check_sale,
    encode_token,
    mac_record,
    qr_url,
)
from market_protocol.messages import qr_amount_fen

__all__ = ["new_sale_id", "build_sale", "sale_payload", "sale_qr_url", "with_status"]


def new_sale_id(device_id: str, seq: int) -> str:
    """``<device_id>.<seq>.<random>``: unique even if a restored backup repeats a seq."""
    return f"{device_id}.{seq}.{secrets.token_hex(4)}"


def build_sale(*, device_id: str, key_version: int, device_key: bytes, seq: int, sale_id: str,
               lines: list[dict[str, Any]], created_at_ms: int, nonce: bytes,
               currency: str = "CNY", tender: dict[str, Any] | None = None) -> dict[str, Any]:
    """A schema-checked, MACed sale. Raises ``market_protocol.SchemaError`` if it is invalid.

    ``tender`` (cash part, 抹零 rounding, notes received) is how the counter settled it; the
    total is the lines' sum less the rounding."""
    rounding = (tender or {}).get("rounding_fen", 0)
    record: dict[str, Any] = {
        "schema": SALE_SCHEMA,
        "sale_id": sale_id,
        "device_id": device_id,
        "seq": seq,
        "created_at_ms": created_at_ms,
        "currency": currency,
        "total_fen": sum(line["amount_fen"] for line in lines) - rounding,
        "lines": lines,
        "qr_issued_at": created_at_ms // 1000,
        "qr_nonce": nonce.hex(),
        "key_version": key_version,
        "status": "open",
        "mac": "0" * 64,
    }
    if tender is not None:
        record["tender"] = dict(tender)
    record["mac"] = mac_record(record, device_key)
    return check_sale(record)


def with_status(record: dict[str, Any], status: str, device_key: bytes) -> dict[str, Any]:
    """The same sale with a new status (``void``), MACed again."""
    changed = {**record, "status": status}
    changed["mac"] = mac_record(changed, device_key)
    return check_sale(changed)


def sale_payload(record: dict[str, Any]) -> QRPayload:
    """The QR payload that belongs to ``record``: the order number is the sale's seq, the
    amount what is left after any cash."""
    return QRPayload(
        device_id=record["device_id"],
        key_version=record["key_version"],
        order_no=record["seq"],
        amount_fen=qr_amount_fen(record),
        currency=record["currency"],
        issued_at=record["qr_issued_at"],
        nonce=bytes.fromhex(record["qr_nonce"]),
    )


def sale_qr_url(record: dict[str, Any], device_key: bytes, gateway_url: str) -> str:
    """The URL the customer display shows: built offline, verifiable by the gateway."""
    return qr_url(gateway_url, encode_token(sale_payload(record), device_key, gateway_url))
