"""Today's sales and the Z report as plain values, for the day screens and their tests.

The figures come from the terminal's own outbox (what it charged and what the gateway said
about each payment), so the vendor can close the day with the network down; the unsent
count is what makes closing it early worth a warning.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from market_protocol import format_fen

from .strings import text

__all__ = ["SaleView", "ZReport", "sale_view", "z_report", "z_report_lines"]

_REFUNDED = ("refunded", "partially_refunded")


@dataclass(frozen=True, slots=True)
class SaleView:
    sale_id: str
    seq: int
    time: str
    total_fen: int
    status: str  # open | paid | void | failed | expired | refunded
    voidable: bool
    refundable: bool


def _status(stored: Any) -> str:
    if stored.sale_status == "void":
        return "void"
    if stored.payment_status in _REFUNDED:
        return "refunded"
    if stored.payment_status in ("paid", "failed", "expired"):
        return stored.payment_status
    return "open"


def sale_view(stored: Any) -> SaleView:
    """One row of today's list from a ``pos_terminal.outbox.StoredSale``."""
    status = _status(stored)
    local = datetime.fromtimestamp(stored.created_at_ms / 1000).astimezone()
    return SaleView(stored.sale_id, stored.seq, local.strftime("%H:%M:%S"), stored.total_fen,
                    status, voidable=status in ("open", "failed", "expired"),
                    refundable=status == "paid")


@dataclass(frozen=True, slots=True)
class ZReport:
    day: str
    sales: int
    paid_count: int
    paid_fen: int
    unpaid_fen: int
    void_count: int
    refunded_fen: int
    unsent: int


def z_report(sales: list[Any], unsent: int, day: str) -> ZReport:
    """Totals of one day; ``unsent`` is the outbox's queued count."""
    views = [sale_view(stored) for stored in sales]
    paid = [v for v in views if v.status in ("paid", "refunded")]
    return ZReport(
        day=day, sales=len(views), paid_count=len(paid),
        paid_fen=sum(v.total_fen for v in paid),
        unpaid_fen=sum(v.total_fen for v in views if v.status in ("open", "failed", "expired")),
        void_count=sum(1 for v in views if v.status == "void"),
        refunded_fen=sum(stored.refunded_fen for stored in sales),
        unsent=unsent)


def z_report_lines(report: ZReport, lang: str, merchant: str, device_id: str) -> list[str]:
    """The report as the lines printed on screen and in the saved PNG."""
    return [
        text("z_title", lang, day=report.day),
        f"{text('z_merchant', lang)}: {merchant}",
        f"{text('z_device', lang)}: {device_id}",
        f"{text('z_sales', lang)}: {report.sales}",
        f"{text('z_paid', lang)}: {format_fen(report.paid_fen)} ({report.paid_count})",
        f"{text('z_unpaid', lang)}: {format_fen(report.unpaid_fen)}",
        f"{text('z_void', lang)}: {report.void_count}",
        f"{text('z_refunded', lang)}: {format_fen(report.refunded_fen)}",
        f"{text('z_unsent', lang)}: {report.unsent}",
    ]
