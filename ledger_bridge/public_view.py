"""What of a trade the world may see, and what only the parties to it may see.

A trade carries the shopper's payment account and the prices. The ledger therefore holds two
records per trade: the public one (businesses, products, weights, lots, dates; the payer only
as a salted hash) whose canonical bytes the trace page shows and checks, and the private one
(the whole gateway-signed trade and the salt) stored only on the nodes of the organisations
party to the trade. The public record commits to the private one by hash.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping
from typing import Any

from market_protocol import record_hash
from trace_ledger.rules.allocation import lot_id_for
from trace_ledger.rules.entry_rules import PRIVATE_SCHEMA, PUBLIC_SCHEMA

__all__ = ["PUBLIC_SCHEMA", "PRIVATE_SCHEMA", "payer_salt", "payer_hash", "private_record",
           "public_record", "measure_of", "line_amount"]



def payer_salt(secret: bytes, trade_id: str) -> bytes:
    """Per-trade salt, derived so a replayed trade yields the same records (idempotence)
    while two trades of one shopper cannot be linked from their public hashes."""
    return hmac.new(secret, b"tracepay-payer-salt/1|" + trade_id.encode(), hashlib.sha256).digest()


def payer_hash(salt: bytes, payer_id: str | None) -> str | None:
    if payer_id is None:
        return None
    return hashlib.sha256(salt + b"|" + payer_id.encode()).hexdigest()


def private_record(trade: Mapping[str, Any], salt: bytes) -> dict[str, Any]:
    return {"schema": PRIVATE_SCHEMA, "trade_id": trade["trade_id"], "trade": dict(trade),
            "payer_salt": salt.hex()}


def measure_of(line: Mapping[str, Any]) -> str:
    """Mass balance runs in grams for weighed lines, in pieces for counted ones."""
    return "piece" if line["unit"] == "piece" else "g"


def line_amount(line: Mapping[str, Any]) -> int:
    return line["quantity"] if line["unit"] == "piece" else line["weight_g"]


def public_record(trade: Mapping[str, Any], *, salt: bytes,
                  resolve_product: Callable[[str, str | None], str],
                  buyer: Mapping[str, Any] | None) -> dict[str, Any]:
    """The public view. ``buyer`` is the registered party that paid, or None for a shopper."""
    sale = trade["sale"]
    lines = []
    for index, line in enumerate(sale["lines"]):
        lines.append({
            "line": index,
            "lot_id": lot_id_for(trade["trace_code"], index),
            "product_code": line["product_code"],
            "product": resolve_product(line["product_code"], line.get("name")),
            "name": line["name"],
            "unit": line["unit"],
            "measure": measure_of(line),
            "amount": line_amount(line),
            "weight_g": line.get("weight_g"),
            "quantity": line.get("quantity"),
            "lot": line.get("lot"),
            "origin": line.get("origin"),
        })
    private = private_record(trade, salt)
    return {
        "schema": PUBLIC_SCHEMA,
        "trade_id": trade["trade_id"],
        "trace_code": trade["trace_code"],
        "seller": dict(trade["seller"]),
        "buyer": dict(buyer) if buyer else {"kind": "shopper"},
        "device_id": sale["device_id"],
        "sold_at_ms": sale["created_at_ms"],
        "confirmed_at_ms": trade["confirmed_at_ms"],
        "lines": lines,
        "payer_hash": payer_hash(salt, trade["payment"].get("payer_id")),
        "private_hash": record_hash(private).hex(),
    }
