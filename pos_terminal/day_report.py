"""The trading day: where it starts, what it took, and the end-of-day (Z) report.

A market day is a local calendar day (the terminal's time zone), because that is the day
the vendor closes and the manager settles. ``day_summary`` is pure arithmetic over the
stored sales; ``render_z_report`` draws it as a PNG the vendor can keep or print.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from market_protocol import format_fen

from .outbox import StoredSale

__all__ = ["day_start_ms", "day_summary", "render_z_report", "CJK_FONTS"]

#: Fonts that can draw Chinese product names, tried in order; Pillow's own font otherwise.
CJK_FONTS = ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
             "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
             "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf")
_PAID = {"paid", "partially_refunded", "refunded"}


def day_start_ms(now_ms: int) -> int:
    """Epoch ms of local midnight at the start of the day containing ``now_ms``."""
    local = datetime.fromtimestamp(now_ms // 1000).astimezone()
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return int(midnight.timestamp()) * 1000


def day_summary(sales: Iterable[StoredSale], *, day_ms: int) -> dict[str, Any]:
    """Counts and sums in fen and grams; void sales count apart and add to nothing,
    except one whose payment landed before its void reached the gateway: the money moved,
    so it is on the books as paid and listed as waiting for a refund (``paid_after_void``).
    """
    summary: dict[str, Any] = {
        "day": datetime.fromtimestamp(day_ms // 1000).astimezone().date().isoformat(),
        "sales": 0, "charged_fen": 0, "paid": 0, "paid_fen": 0, "unpaid": 0, "unpaid_fen": 0,
        "void": 0, "refunded_fen": 0, "net_fen": 0, "unsent": 0, "first_seq": None,
        "last_seq": None, "products": {}, "paid_after_void": 0, "paid_after_void_fen": 0,
        "paid_after_void_seqs": [], "by_channel": {}, "rounding_fen": 0,
    }
    products: dict[str, dict[str, Any]] = summary["products"]
    for sale in sales:
        summary["first_seq"] = summary["first_seq"] or sale.seq
        summary["last_seq"] = sale.seq
        summary["unsent"] += sale.state == "queued"
        if sale.sale_status == "void" and sale.payment_status not in _PAID:
            summary["void"] += 1
            continue
        if sale.sale_status == "void" and sale.refunded_fen < sale.total_fen:
            summary["paid_after_void"] += 1
            summary["paid_after_void_fen"] += sale.total_fen - sale.refunded_fen
            summary["paid_after_void_seqs"].append(sale.seq)
        summary["sales"] += 1
        summary["charged_fen"] += sale.total_fen
        if sale.payment_status in _PAID:
            summary["paid"] += 1
            summary["paid_fen"] += sale.total_fen
            summary["refunded_fen"] += sale.refunded_fen
            _count_tender(summary, sale)
            for line in sale.record["lines"]:
                row = products.setdefault(line["product_code"], {
                    "name": line["name"], "weight_g": 0, "quantity": 0, "amount_fen": 0})
                row["weight_g"] += line["weight_g"] or 0
                row["quantity"] += line["quantity"] or 0
                row["amount_fen"] += line["amount_fen"]
        else:
            summary["unpaid"] += 1
            summary["unpaid_fen"] += sale.total_fen
    summary["net_fen"] = summary["paid_fen"] - summary["refunded_fen"]
    return summary


def _count_tender(summary: dict[str, Any], sale: StoredSale) -> None:
    """Paid money by how it came in: a mixed sale's cash apart from its QR part."""
    tender = sale.record.get("tender") or {}
    summary["rounding_fen"] += tender.get("rounding_fen", 0)
    cash = tender.get("cash_fen", 0)
    parts = [("cash", cash)] if cash else []
    if sale.total_fen > cash:
        parts.append((sale.payment_channel or "unknown", sale.total_fen - cash))
    for channel, fen in parts:
        row = summary["by_channel"].setdefault(channel, {"count": 0, "fen": 0})
        row["count"] += 1
        row["fen"] += fen


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    for path in CJK_FONTS:
        if Path(path).exists():
            return ImageFont.truetype(path, size)
    return ImageFont.load_default(size=size)


def render_z_report(summary: dict[str, Any], *, merchant: str, device_id: str,
                    printed_at: str) -> bytes:
    """A receipt-width (576 px, 80 mm at 203 dpi) PNG of the day's summary."""
    rows: list[tuple[str, str]] = [
        ("Z REPORT / 日结", ""), (merchant, ""), (f"Terminal {device_id}", summary["day"]),
        ("", ""),
        ("Sales / 销售", str(summary["sales"])), ("Charged", format_fen(summary["charged_fen"])),
        ("Paid / 已付", f"{summary['paid']}  {format_fen(summary['paid_fen'])}"),
        ("Unpaid / 未付", f"{summary['unpaid']}  {format_fen(summary['unpaid_fen'])}"),
        *[(f"  {channel}", f"{row['count']}  {format_fen(row['fen'])}")
          for channel, row in sorted(summary["by_channel"].items())],
        *([("Rounding / 抹零", format_fen(summary["rounding_fen"]))]
          if summary["rounding_fen"] else []),
        ("Void / 作废", str(summary["void"])),
        ("Refunded / 退款", format_fen(summary["refunded_fen"])),
        ("NET / 净额", format_fen(summary["net_fen"])),
        ("Seq", f"{summary['first_seq'] or '-'} .. {summary['last_seq'] or '-'}"),
        ("", ""),
    ]
    for row in summary["products"].values():
        amount = f"{row['weight_g']} g" if row["weight_g"] else f"x{row['quantity']}"
        rows.append((row["name"], f"{amount}  {format_fen(row['amount_fen'])}"))
    if summary["paid_after_void"]:
        seqs = ", ".join(str(seq) for seq in summary["paid_after_void_seqs"])
        rows += [("", ""), ("PAID AFTER VOID / 作废后已付", f"{summary['paid_after_void']}  "
                 f"{format_fen(summary['paid_after_void_fen'])}"),
                 (f"  refund / 请退款: seq {seqs}", "")]
    if summary["unsent"]:
        rows += [("", ""), (f"WARNING: {summary['unsent']} sale(s) not uploaded", "")]
    rows += [("", ""), ("Printed", printed_at)]
    font, line_height, width = _font(22), 32, 576
    image = Image.new("L", (width, 24 + line_height * len(rows)), 255)
    draw = ImageDraw.Draw(image)
    for index, (left, right) in enumerate(rows):
        y = 12 + index * line_height
        draw.text((16, y), left, font=font, fill=0)
        if right:
            draw.text((width - 16, y), right, font=font, fill=0, anchor="ra")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()
