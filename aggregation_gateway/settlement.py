"""Per-vendor daily settlement and T+1 reconciliation: pure functions over plain rows.

Fees follow the channel's published rule (a rate on each paid amount, rounded half-up to
the fen; a refund gives back the difference of fees on the cumulative refunded amount,
so a full refund returns exactly the whole fee). Computing them the same way is what lets
the settlement add up to the platform's statement to the fen.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["fee_fen", "refund_fee_fen", "VendorDay", "settle", "settlement_csv",
           "settlement_svg", "Mismatch", "Reconciliation", "reconcile", "MISMATCH_KINDS"]

MISMATCH_KINDS = ("missing_on_our_side", "missing_on_their_side", "amount_differs",
                  "status_differs", "fee_differs")


def fee_fen(amount_fen: int, rate_ppm: int) -> int:
    """Fee on ``amount_fen`` at ``rate_ppm`` parts per million, rounded half-up."""
    return (amount_fen * rate_ppm * 2 + 1_000_000) // 2_000_000


def refund_fee_fen(paid_fen: int, refunded_before_fen: int, refund_fen: int,
                   rate_ppm: int) -> int:
    """Fee given back with a refund of ``refund_fen`` after ``refunded_before_fen``."""
    charged = fee_fen(paid_fen, rate_ppm)

    def returned(refunded: int) -> int:
        return min(fee_fen(refunded, rate_ppm), charged)

    if refunded_before_fen + refund_fen == paid_fen:
        return charged - returned(refunded_before_fen)
    return returned(refunded_before_fen + refund_fen) - returned(refunded_before_fen)


@dataclass
class VendorDay:
    merchant_id: str
    name: str
    payments: int = 0
    gross_fen: int = 0
    refunds: int = 0
    refunds_fen: int = 0
    fees_fen: int = 0

    @property
    def net_fen(self) -> int:
        return self.gross_fen - self.refunds_fen - self.fees_fen


def settle(payments: Iterable[Mapping[str, Any]], refunds: Iterable[Mapping[str, Any]],
           names: Mapping[str, str], rate_ppm: int) -> list[VendorDay]:
    """One row per vendor. ``payments`` were paid that day; ``refunds`` succeeded that day
    and carry ``paid_fen`` and ``refunded_before_fen`` of their payment."""
    vendors: dict[str, VendorDay] = {}

    def vendor(merchant_id: str) -> VendorDay:
        if merchant_id not in vendors:
            vendors[merchant_id] = VendorDay(merchant_id, names.get(merchant_id, merchant_id))
        return vendors[merchant_id]

    for payment in payments:
        row = vendor(payment["merchant_id"])
        row.payments += 1
        row.gross_fen += payment["amount_fen"]
        row.fees_fen += fee_fen(payment["amount_fen"], rate_ppm)
    for refund in refunds:
        row = vendor(refund["merchant_id"])
        row.refunds += 1
        row.refunds_fen += refund["amount_fen"]
        row.fees_fen -= refund_fee_fen(refund["paid_fen"], refund["refunded_before_fen"],
                                       refund["amount_fen"], rate_ppm)
    return sorted(vendors.values(), key=lambda row: row.merchant_id)


def settlement_csv(day: str, rows: list[VendorDay]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["date", "merchant_id", "name", "payments", "gross_fen", "refunds",
                     "refunds_fen", "fees_fen", "net_fen"])
    for row in rows:
        writer.writerow([day, row.merchant_id, row.name, row.payments, row.gross_fen,
                         row.refunds, row.refunds_fen, row.fees_fen, row.net_fen])
    writer.writerow([day, "TOTAL", "", sum(r.payments for r in rows),
                     sum(r.gross_fen for r in rows), sum(r.refunds for r in rows),
                     sum(r.refunds_fen for r in rows), sum(r.fees_fen for r in rows),
                     sum(r.net_fen for r in rows)])
    return buffer.getvalue()


def _escape(text: str) -> str:
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


def settlement_svg(rows: list[VendorDay], width: int = 640, bar_height: int = 26) -> str:
    """A horizontal bar chart of gross and net per vendor: inline SVG, no external assets."""
    label_width, gap = 180, 8
    height = max(1, len(rows)) * (bar_height + gap) + 30
    top = max([row.gross_fen for row in rows] + [1])
    scale = (width - label_width - 90) / top
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'role="img" aria-label="gross and net per vendor">']
    for index, row in enumerate(rows):
        y = 10 + index * (bar_height + gap)
        gross_w = max(1, int(row.gross_fen * scale))
        net_w = max(0, int(max(row.net_fen, 0) * scale))
        parts.append(f'<text x="0" y="{y + bar_height * 0.7:.0f}" font-size="13">'
                     f'{_escape(row.name[:24])}</text>')
        parts.append(f'<rect x="{label_width}" y="{y}" width="{gross_w}" '
                     f'height="{bar_height}" fill="#b7dfc2"><title>gross {row.gross_fen} fen'
                     f'</title></rect>')
        parts.append(f'<rect x="{label_width}" y="{y + 6}" width="{net_w}" '
                     f'height="{bar_height - 12}" fill="#1a7f37"><title>net {row.net_fen} fen'
                     f'</title></rect>')
        parts.append(f'<text x="{label_width + gross_w + 6}" y="{y + bar_height * 0.7:.0f}" '
                     f'font-size="12">¥{row.net_fen / 100:.2f}</text>')
    parts.append(f'<text x="{label_width}" y="{height - 6}" font-size="11" fill="#667">'
                 'light: gross · dark: net after refunds and fees</text></svg>')
    return "".join(parts)


# -- reconciliation -----------------------------------------------------------------------
@dataclass(frozen=True)
class Mismatch:
    kind: str
    key: str  # "payment:<out_trade_no>" or "refund:<out_refund_no>"
    detail: str


@dataclass
class Reconciliation:
    matched: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)   # earlier open items now matched
    carried: list[str] = field(default_factory=list)    # earlier open items still open


def reconcile(ours: Mapping[str, Mapping[str, Any]], theirs: Mapping[str, Mapping[str, Any]],
              our_status: Mapping[str, str], open_items: Mapping[str, str]) -> Reconciliation:
    """Compare one day's lines, keyed ``payment:<id>`` / ``refund:<id>``, each with
    ``amount_fen`` and ``fee_fen``.

    ``our_status`` gives our status of any payment the statement names that is not among
    ``ours`` (so "we think it expired" is told apart from "we never heard of it");
    ``open_items`` (key -> kind) are earlier days' unmatched lines: a line that shows up
    today on the other side resolves its item instead of becoming a new mismatch.
    """
    result = Reconciliation()
    for key in sorted(set(ours) | set(theirs)):
        mine, other = ours.get(key), theirs.get(key)
        if mine is not None and other is not None:
            if mine["amount_fen"] != other["amount_fen"]:
                result.mismatches.append(Mismatch("amount_differs", key, f"ours "
                                                  f"{mine['amount_fen']}, theirs "
                                                  f"{other['amount_fen']}"))
            elif mine["fee_fen"] != other["fee_fen"]:
                result.mismatches.append(Mismatch("fee_differs", key, f"ours {mine['fee_fen']},"
                                                  f" theirs {other['fee_fen']}"))
            else:
                result.matched += 1
        elif other is not None:
            if open_items.get(key) == "missing_on_their_side":
                continue  # ours was on an earlier day: resolved below
            status = our_status.get(key)
            if status is not None:
                result.mismatches.append(Mismatch("status_differs", key, f"theirs paid, ours "
                                                  f"{status}"))
            else:
                result.mismatches.append(Mismatch("missing_on_our_side", key,
                                                  f"theirs {other['amount_fen']} fen"))
        else:
            assert mine is not None
            if open_items.get(key) == "missing_on_our_side":
                continue
            result.mismatches.append(Mismatch("missing_on_their_side", key,
                                              f"ours {mine['amount_fen']} fen"))
    for key, kind in open_items.items():
        counterpart = theirs if kind == "missing_on_their_side" else ours
        (result.resolved if key in counterpart else result.carried).append(key)
    return result
