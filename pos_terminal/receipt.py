"""Receipts and the Z report as ESC/POS byte streams, laid out for 80 mm or 58 mm paper.

Everything is drawn into python-escpos's ``Dummy`` printer, so the same bytes go to a USB,
serial or network printer (``pos_terminal.printer``) and to the tests. Text is sent in
Chinese character mode (``FS &``) encoded as GB18030, whose two-byte range is the GB2312 /
GBK set every Chinese receipt printer carries; the library's own code-page switching is
bypassed because a single-byte code-page switch in the middle of a Chinese line garbles
the rest of it. The trace link is a native ``GS ( k`` QR code: the printer draws it
sharp at any size, and a shopper's phone opens the trace page from the paper.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from escpos.constants import QR_ECLEVEL_M
from escpos.printer import Dummy

from market_protocol import format_fen, trace_code_for_sale

from .outbox import StoredSale
from .voice import CHANNEL_WORDS

__all__ = ["COLUMNS", "CHINESE_MODE", "receipt_bytes", "z_report_bytes", "display_width",
           "trace_link"]

#: Characters per line in font A (12x24 dots): 576 dots on 80 mm paper, 384 on 58 mm.
COLUMNS = {80: 48, 58: 32}
#: FS & selects Chinese character mode; FS . leaves it.
CHINESE_MODE, CHINESE_MODE_OFF = b"\x1c&", b"\x1c."
#: QR module size in dots: ~2.6 cm codes on either paper.
_QR_DOTS = {80: 6, 58: 5}
_UNIT_WORDS = {"kg": "kg", "500g": "斤", "piece": "件"}
_STATUS_WORDS = {"paid": "已付 PAID", "refunded": "已退款 REFUNDED",
                 "partially_refunded": "部分退款 PART REFUNDED", "failed": "失败 FAILED",
                 "expired": "已过期 EXPIRED", "pending": "待付 PENDING"}


def display_width(text: str) -> int:
    """Printed columns: Chinese (wide/full-width) characters take two."""
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)


def _pair(left: str, right: str, columns: int) -> str:
    gap = columns - display_width(left) - display_width(right)
    if gap < 1:  # too long: the right part goes on a line of its own, flush right
        return f"{left}\n{' ' * max(columns - display_width(right), 0)}{right}"
    return left + " " * gap + right


def trace_link(trace_base_url: str, trace_code: str) -> str:
    """The consumer app's trace page for ``trace_code`` (the code alone without a base)."""
    return f"{trace_base_url.rstrip('/')}/trace/{trace_code}" if trace_base_url else trace_code


class _Paper:
    """A Dummy printer plus the receipt's column arithmetic."""

    def __init__(self, paper_mm: int) -> None:
        if paper_mm not in COLUMNS:
            raise ValueError(f"paper must be 80 or 58 mm, not {paper_mm!r}")
        self.paper_mm, self.columns = paper_mm, COLUMNS[paper_mm]
        self.printer = Dummy()
        self.printer.hw("INIT")
        self.printer._raw(CHINESE_MODE)

    def line(self, text: str = "") -> None:
        self.printer._raw(text.encode("gb18030", errors="replace") + b"\n")

    def pair(self, left: str, right: str) -> None:
        self.line(_pair(left, right, self.columns))

    def rule(self) -> None:
        self.line("-" * self.columns)

    def title(self, text: str) -> None:
        self.printer.set(align="center", bold=True, double_height=True, double_width=True)
        self.line(text)
        self.printer.set(align="left", bold=False, normal_textsize=True)

    def centred(self, text: str) -> None:
        self.printer.set(align="center")
        self.line(text)
        self.printer.set(align="left")

    def qr(self, content: str) -> None:
        self.printer.set(align="center")
        self.printer.qr(content, ec=QR_ECLEVEL_M, size=_QR_DOTS[self.paper_mm], native=True)
        self.printer.set(align="left")

    def finish(self) -> bytes:
        self.printer._raw(CHINESE_MODE_OFF)
        self.printer.cut()
        return self.printer.output


def _line_rows(paper: _Paper, line: Mapping[str, Any], names_zh: Mapping[str, str]) -> None:
    name = line.get("name_zh") or names_zh.get(line["product_code"]) or line["name"]
    paper.line(name if name == line["name"] else f"{name} {line['name']}")
    unit = _UNIT_WORDS.get(line["unit"], line["unit"])
    if line["weight_g"] is not None:
        measure = f"{line['weight_g'] / 1000:.3f}kg"
        if line.get("weight_entry") == "manual":
            measure += "(手输)"  # typed by hand, not weighed
    else:
        measure = f"x{line['quantity']}"
    price = f"@{format_fen(line['unit_price_fen'], symbol='')}/{unit}"
    paper.pair(f"  {measure} {price}", format_fen(line["amount_fen"], symbol=""))


def _tender_rows(paper: _Paper, sale: StoredSale) -> None:
    tender = sale.record.get("tender") or {}
    rounding = tender.get("rounding_fen", 0)
    if rounding:
        paper.pair("抹零 Rounding", "-" + format_fen(rounding, symbol=""))
    paper.printer.set(bold=True, double_height=True)
    paper.pair("合计 TOTAL ￥", format_fen(sale.total_fen, symbol=""))
    paper.printer.set(bold=False, normal_textsize=True)
    cash = tender.get("cash_fen", 0)
    if cash:
        paper.pair("现金 Cash", format_fen(cash, symbol=""))
        if tender.get("received_fen"):
            paper.pair("  收 Received", format_fen(tender["received_fen"], symbol=""))
            paper.pair("  找零 Change", format_fen(tender["received_fen"] - cash, symbol=""))
    if cash < sale.total_fen:
        channel = sale.payment_channel or ""
        words = CHANNEL_WORDS.get(channel, "扫码")
        paper.pair(f"{words} {channel}".rstrip(), format_fen(sale.total_fen - cash, symbol=""))


def receipt_bytes(sale: StoredSale, *, stall: str, device_id: str, paper_mm: int = 80,
                  names_zh: Mapping[str, str] | None = None, trace_base_url: str = "",
                  reprint: bool = False) -> bytes:
    """The ESC/POS bytes of ``sale``'s receipt: stall, lines, total, tender, time, trace QR.

    ``names_zh`` maps product codes to Chinese names for lines whose record carries none.
    """
    paper = _Paper(paper_mm)
    paper.title(stall)
    if reprint:
        paper.centred("** 重印 REPRINT **")
    paper.rule()
    for line in sale.record["lines"]:
        _line_rows(paper, line, names_zh or {})
    paper.rule()
    _tender_rows(paper, sale)
    status = sale.payment_status or "pending"
    if sale.sale_status == "void" and status not in ("paid", "refunded", "partially_refunded"):
        status_words = "作废 VOID"
    else:
        status_words = _STATUS_WORDS.get(status, status)
    paper.pair("状态 Status", status_words)
    if sale.refunded_fen:
        paper.pair("退款 Refunded", format_fen(sale.refunded_fen, symbol=""))
    when = datetime.fromtimestamp(sale.created_at_ms / 1000).astimezone()
    paper.pair("时间 Time", when.strftime("%Y-%m-%d %H:%M:%S"))
    paper.pair(f"终端 {device_id}", f"No. {sale.seq}")
    code = trace_code_for_sale(sale.sale_id)
    paper.rule()
    paper.centred("扫码查看溯源 Scan to trace")
    paper.qr(trace_link(trace_base_url, code))
    paper.centred(f"溯源码 {code}")
    paper.line()
    return paper.finish()


def z_report_bytes(summary: Mapping[str, Any], *, stall: str, device_id: str, printed_at: str,
                   paper_mm: int = 80) -> bytes:
    """The day's Z report (``day_report.day_summary``) as ESC/POS bytes."""
    paper = _Paper(paper_mm)
    paper.title("日结 Z REPORT")
    paper.centred(stall)
    paper.pair(f"终端 {device_id}", summary["day"])
    paper.rule()
    money = format_fen
    paper.pair("销售 Sales", str(summary["sales"]))
    paper.pair("应收 Charged", money(summary["charged_fen"], symbol=""))
    paper.pair("已付 Paid", f"{summary['paid']}  {money(summary['paid_fen'], symbol='')}")
    for channel, row in sorted((summary.get("by_channel") or {}).items()):
        words = CHANNEL_WORDS.get(channel, channel)
        paper.pair(f"  {words}", f"{row['count']}  {money(row['fen'], symbol='')}")
    if summary.get("rounding_fen"):
        paper.pair("抹零 Rounding", money(summary["rounding_fen"], symbol=""))
    paper.pair("未付 Unpaid", f"{summary['unpaid']}  {money(summary['unpaid_fen'], symbol='')}")
    paper.pair("作废 Void", str(summary["void"]))
    paper.pair("退款 Refunded", money(summary["refunded_fen"], symbol=""))
    paper.printer.set(bold=True)
    paper.pair("净额 NET", money(summary["net_fen"], symbol=""))
    paper.printer.set(bold=False)
    paper.pair("序号 Seq", f"{summary['first_seq'] or '-'}..{summary['last_seq'] or '-'}")
    paper.rule()
    for row in summary["products"].values():
        amount = f"{row['weight_g'] / 1000:.3f}kg" if row["weight_g"] else f"x{row['quantity']}"
        paper.pair(row["name"], f"{amount} {money(row['amount_fen'], symbol='')}")
    if summary["paid_after_void"]:
        seqs = ", ".join(str(seq) for seq in summary["paid_after_void_seqs"])
        paper.rule()
        paper.pair("作废后已付 PAID AFTER VOID",
                   f"{summary['paid_after_void']}  "
                   f"{money(summary['paid_after_void_fen'], symbol='')}")
        paper.line(f"  请退款 refund: seq {seqs}")
    if summary["unsent"]:
        paper.line(f"警告 WARNING: {summary['unsent']} 笔未上传 not uploaded")
    paper.rule()
    paper.pair("打印 Printed", printed_at)
    paper.line()
    return paper.finish()
