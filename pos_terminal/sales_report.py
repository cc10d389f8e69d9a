"""What sold, and when: sales by product and by hour for a day or a week, and as CSV.

The Z report closes a day's money; this answers the vendor's other questions (what sold
best, when the stall is busy, what to buy in at the wholesale market tomorrow). Only paid
sales count (a sale paid after its void included, as in the Z report); refunds are shown
per sale's products in proportion to the money given back. Quantities keep their unit:
weighed goods in grams, counted goods in pieces. Pure over the outbox's stored sales.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from .day_report import day_start_ms
from .outbox import StoredSale

__all__ = ["sales_report", "period_bounds", "products_csv", "hours_csv", "PERIODS"]

PERIODS = ("day", "week")
_PAID = {"paid", "partially_refunded", "refunded"}
_DAY_MS = 86_400_000


def period_bounds(period: str, now_ms: int) -> tuple[int, int]:
    """[start, end) in epoch ms: today, or the seven local days ending today."""
    if period not in PERIODS:
        raise ValueError(f"period must be one of {', '.join(PERIODS)}")
    today = day_start_ms(now_ms)
    back = 6 if period == "week" else 0
    # an hour past the estimate, then back to its midnight: right on 23- and 25-hour days
    start = day_start_ms(today - back * _DAY_MS + 3_600_000)
    return start, day_start_ms(today + _DAY_MS + 3_600_000)


def _hour(created_at_ms: int) -> str:
    return datetime.fromtimestamp(created_at_ms / 1000).astimezone().strftime("%Y-%m-%d %H:00")


def sales_report(sales: Iterable[StoredSale], *, period: str, start_ms: int,
                 end_ms: int, names_zh: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Totals, ``products`` (best selling first) and ``hours`` (in time order);
    ``names_zh`` (product code -> Chinese name, from the catalogue) names the products."""
    products: dict[str, dict[str, Any]] = {}
    hours: dict[str, dict[str, int]] = {}
    totals = {"sales": 0, "amount_fen": 0, "refunded_fen": 0, "net_fen": 0}
    for sale in sales:
        if not start_ms <= sale.created_at_ms < end_ms or sale.payment_status not in _PAID:
            continue
        totals["sales"] += 1
        totals["amount_fen"] += sale.total_fen
        totals["refunded_fen"] += sale.refunded_fen
        hour = hours.setdefault(_hour(sale.created_at_ms), {"sales": 0, "amount_fen": 0})
        hour["sales"] += 1
        hour["amount_fen"] += sale.total_fen - sale.refunded_fen
        kept = 1 - sale.refunded_fen / sale.total_fen if sale.total_fen else 1
        for line in sale.record["lines"]:
            row = products.setdefault(line["product_code"], {
                "product_code": line["product_code"], "name": line["name"],
                "name_zh": (names_zh or {}).get(line["product_code"], ""), "unit": line["unit"], "sales": 0,
                "weight_g": 0, "quantity": 0, "amount_fen": 0, "net_fen": 0})
            row["sales"] += 1
            row["weight_g"] += line.get("weight_g") or 0
            row["quantity"] += line.get("quantity") or 0
            row["amount_fen"] += line["amount_fen"]
            row["net_fen"] += round(line["amount_fen"] * kept)
    totals["net_fen"] = totals["amount_fen"] - totals["refunded_fen"]
    return {"period": period, "start_ms": start_ms, "end_ms": end_ms, **totals,
            "products": sorted(products.values(),
                               key=lambda row: (-row["net_fen"], row["product_code"])),
            "hours": [{"hour": hour, **row} for hour, row in sorted(hours.items())]}


def _csv(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore",
                            lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def products_csv(report: dict[str, Any]) -> str:
    """One row per product; amounts in fen, weights in grams (spreadsheets divide)."""
    return _csv(report["products"], ("product_code", "name", "name_zh", "unit", "sales",
                                     "weight_g", "quantity", "amount_fen", "net_fen"))


def hours_csv(report: dict[str, Any]) -> str:
    """One row per hour that had a paid sale."""
    return _csv(report["hours"], ("hour", "sales", "amount_fen"))
