"""Trade-shaped ledger entries for the ledger benchmarks, built fast and deterministically.

Each record has the shape and size of a ``tracepay.trade/1`` (two weighed lines, payment,
seller; about 1 KB of canonical JSON) and carries the trace keys the bridge gives a
trade: its trace code, the seller's merchant id and each line's lot.
"""

from __future__ import annotations

from collections.abc import Iterator

from market_protocol import trace_code_for_sale
from trace_ledger import LedgerEntry

ORG_BY_SELLER = ("production_base", "wholesale_market", "retail_market")
_SIG = "g" * 86


def trade_entry(i: int, merchants: int = 500, lots: int = 20_000) -> LedgerEntry:
    sale_id = f"dev{i % 997:03d}.{i}.s{i:08d}"
    merchant = f"m{i % merchants:04d}"
    org = ORG_BY_SELLER[i % 3]
    at = 1_763_700_000_000 + i * 37
    lines = [{"product_code": f"veg-{(i + j) % 150:03d}", "name": "cabbage", "unit": "kg",
              "unit_price_fen": 380 + j, "weight_g": 500 + (i * 7 + j) % 2000, "quantity": None,
              "amount_fen": 190 + j, "lot": f"lot-{(i * 3 + j) % lots:06d}",
              "origin": "Shouguang base 3"} for j in range(2)]
    trace_code = trace_code_for_sale(sale_id)
    record = {"schema": "tracepay.trade/1", "trade_id": sale_id, "trace_code": trace_code,
              "sale": {"schema": "tracepay.sale/1", "sale_id": sale_id, "device_id": f"dev{i % 997:03d}",
                       "seq": i + 1, "created_at_ms": at, "currency": "CNY", "total_fen": 381,
                       "lines": lines, "qr_issued_at": at // 1000, "qr_nonce": f"{i:016x}",
                       "key_version": 1, "mac": "0" * 64},
              "payment": {"payment_id": f"pay-{sale_id}", "channel": "sandbox",
                          "channel_txn_id": f"txn{i}", "amount_fen": 381, "currency": "CNY",
                          "paid_at_ms": at + 5_000, "payer_id": f"payer-{i % 5000}"},
              "seller": {"merchant_id": merchant, "name": f"Stall {merchant}", "org": org},
              "confirmed_at_ms": at + 6_000, "gateway_sig": _SIG}
    keys = [trace_code, merchant, *{line["lot"] for line in lines}]
    visible = None if i % 4 else (org, "retail_market")
    return LedgerEntry("trade", sale_id, record, keys, visible)


def trade_entries(start: int, count: int) -> Iterator[LedgerEntry]:
    for i in range(start, start + count):
        yield trade_entry(i)
