"""Gateway-signed trades built in-process: for benchmarks, back-fill drills and tests.

Builds exactly what the gateway publishes (``tracepay.trade/1``), signed with a key the
caller holds, so everything downstream runs the real checks on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from market_protocol import TRADE_SCHEMA, line_amount_fen, signing, trace_code_for_sale
from market_protocol.messages import SALE_SCHEMA

__all__ = ["Seller", "line", "make_trade"]


@dataclass(frozen=True)
class Seller:
    merchant_id: str
    name: str
    org: str
    device_id: str

    def as_seller(self) -> dict[str, str]:
        return {"merchant_id": self.merchant_id, "name": self.name, "org": self.org}


def line(product_code: str, weight_g: int | None = None, *, unit: str = "kg",
         unit_price_fen: int = 400, quantity: int | None = None, name: str | None = None,
         lot: str | None = None, origin: str | None = None) -> dict[str, Any]:
    """One cart line whose amount is computed by the one money rule."""
    amount = line_amount_fen(unit, unit_price_fen, weight_g=weight_g, quantity=quantity)
    return {"product_code": product_code, "name": name or product_code, "unit": unit,
            "unit_price_fen": unit_price_fen, "weight_g": weight_g, "quantity": quantity,
            "amount_fen": amount, "lot": lot, "origin": origin}


def make_trade(key: Ed25519PrivateKey, seller: Seller, seq: int, lines: Sequence[dict[str, Any]],
               *, payer_id: str | None = "shopper-0001", at_ms: int = 1_763_700_000_000,
               sale_id: str | None = None) -> dict[str, Any]:
    """A confirmed, signed trade of ``seller``'s ``seq``-th sale at ``at_ms``."""
    sale_id = sale_id or f"{seller.device_id}.{seq}.s{seq:06d}"
    total = sum(item["amount_fen"] for item in lines)
    sale = {"schema": SALE_SCHEMA, "sale_id": sale_id, "device_id": seller.device_id,
            "seq": seq, "created_at_ms": at_ms, "currency": "CNY", "total_fen": total,
            "lines": [dict(item) for item in lines], "qr_issued_at": at_ms // 1000,
            "qr_nonce": f"{seq:016x}"[-16:], "key_version": 1, "mac": "0" * 64}
    trade = {"schema": TRADE_SCHEMA, "trade_id": sale_id,
             "trace_code": trace_code_for_sale(sale_id), "sale": sale,
             "payment": {"payment_id": f"pay-{sale_id}"[:64], "channel": "sandbox",
                         "channel_txn_id": f"txn{seq}", "amount_fen": total, "currency": "CNY",
                         "paid_at_ms": at_ms + 5_000, "payer_id": payer_id},
             "seller": seller.as_seller(), "confirmed_at_ms": at_ms + 6_000}
    trade["gateway_sig"] = signing.sign_record(key, trade, "gateway_sig")
    return trade
