"""Today's sales as rows for the day screen, and the Z report as lines of text.

The figures come from the terminal's own outbox (``pos_terminal.day_report.day_summary``),
so the vendor can close the day with the network down; the unsent count is what makes
closing it early worth a warning.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from market_protocol import format_fen

from .strings import text

__all__ = ["SaleView", "sale_view", "z_report_lines", "sales_report_lines"]

_REFUNDED = ("refunded", "partially_refunded")


@dataclass(frozen=True, slots=True)
class SaleView:
    sale_id: str
    seq: int
    time: str
    total_fen: int
    status: str  # open | paid | paid_after_void | void | failed | expired | refunded
    #              | partially_refunded
    voidable: bool
    refundable: bool


def _status(stored: Any) -> str:
    if stored.sale_status == "void" and stored.payment_status == "paid":
        return "paid_after_void"  # the shopper paid before the void reached the gateway
    if stored.sale_status == "void" and stored.payment_status not in _REFUNDED:
        return "void"
    if stored.payment_status in _REFUNDED:
        return stored.payment_status  # a partial refund stays marked partial
    if stored.payment_status in ("paid", "failed", "expired"):
        return stored.payment_status
    return "open"


def sale_view(stored: Any) -> SaleView:
    """One row of today's list from a ``pos_terminal.outbox.StoredSale``."""
    status = _status(stored)
    local = datetime.fromtimestamp(stored.created_at_ms / 1000).astimezone()
    return SaleView(stored.sale_id, stored.seq, local.strftime("%H:%M:%S"), stored.total_fen,
                    status, voidable=status in ("open", "failed", "expired"),
                    refundable=status in ("paid", "paid_after_void"))


def z_report_lines(summary: dict[str, Any], lang: str, merchant: str,
                   device_id: str) -> list[str]:
    """A ``day_summary`` as the lines shown on the Z report screen."""
    return [
        text("z_title", lang, day=summary["day"]),
        f"{text('z_merchant', lang)}: {merchant}",
        f"{text('z_device', lang)}: {device_id}",
        f"{text('z_sales', lang)}: {summary['sales']}",
        f"{text('z_paid', lang)}: {format_fen(summary['paid_fen'])} ({summary['paid']})",
        f"{text('z_unpaid', lang)}: {format_fen(summary['unpaid_fen'])} ({summary['unpaid']})",
        f"{text('z_void', lang)}: {summary['void']}",
        f"{text('z_refunded', lang)}: {format_fen(summary['refunded_fen'])}",
        f"{text('z_unsent', lang)}: {summary['unsent']}",
    ] + ([f"{text('z_paid_after_void', lang)}: "
          f"{format_fen(summary['paid_after_void_fen'])} ({summary['paid_after_void']})"]
         if summary.get("paid_after_void") else [])


def _measure(row: dict[str, Any], lang: str) -> str:
    if row["weight_g"]:
        return f"{row['weight_g'] / 1000:.3f} kg"
    return f"{row['quantity']} {text('pieces', lang)}"


def sales_report_lines(report: dict[str, Any], lang: str) -> list[str]:
    """A ``pos_terminal.sales_report`` report (day or week) as the screen's lines: the
    totals, then the products best selling first, then the busy hours."""
    name_of = (lambda row: row["name_zh"] or row["name"]) if lang == "zh" else (
        lambda row: row["name"])
    lines = [text(f"report_title_{report['period']}", lang),
             text("report_totals", lang, count=report["sales"],
                  amount=format_fen(report["net_fen"]),
                  refunded=format_fen(report["refunded_fen"])),
             "", text("report_products", lang)]
    lines += [f"  {name_of(row)}  {_measure(row, lang)}  {format_fen(row['net_fen'])}"
              for row in report["products"]] or [f"  {text('report_none', lang)}"]
    lines += ["", text("report_hours", lang)]
    lines += [f"  {row['hour']}  {row['sales']}  {format_fen(row['amount_fen'])}"
              for row in report["hours"]] or [f"  {text('report_none', lang)}"]
    return lines

