"""The daily statement file a merchant downloads for T+1 reconciliation (pure).

One CSV line per payment made that day and per refund made that day. Refund lines carry
negative amounts and return the fee, so the ``net_fen`` column sums to what the platform
settles to the merchant for the day. The same lines are offered as JSON with totals.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

__all__ = ["COLUMNS", "day_bounds_ms", "statement_csv", "statement_lines", "statement_totals",
           "parse_day"]

COLUMNS = ("kind", "time_ms", "order_id", "out_trade_no", "out_refund_no", "channel_txn_id",
           "payer_id", "amount_fen", "fee_fen", "net_fen")


def parse_day(text: str) -> date:
    """``YYYY-MM-DD`` -> date; ValueError for anything else."""
    if len(text) != 10:
        raise ValueError(f"expected YYYY-MM-DD, found {text!r}")
    return date.fromisoformat(text)


def day_bounds_ms(day: date, timezone: str) -> tuple[int, int]:
    """[start, end) of ``day`` in ``timezone`` as epoch milliseconds."""
    zone = ZoneInfo(timezone)
    start = datetime(day.year, day.month, day.day, tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=zone)
    return int(start.timestamp() * 1000), int(end.timestamp() * 1000)


def statement_lines(paid: Iterable[Mapping[str, Any]],
                    refunds: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One dict per line (keys ``COLUMNS``), in time order."""
    lines: list[dict[str, Any]] = []
    for order in paid:
        lines.append(dict(zip(COLUMNS, (
            "payment", order["paid_at_ms"], order["order_id"], order["out_trade_no"], "",
            order["channel_txn_id"], order["payer_id"], order["amount_fen"], order["fee_fen"],
            order["amount_fen"] - order["fee_fen"]), strict=True)))
    for refund in refunds:
        lines.append(dict(zip(COLUMNS, (
            "refund", refund["created_at_ms"], refund["order_id"], refund["out_trade_no"],
            refund["out_refund_no"], refund.get("channel_txn_id") or "",
            refund.get("payer_id") or "", -refund["amount_fen"], -refund["fee_fen"],
            -(refund["amount_fen"] - refund["fee_fen"])), strict=True)))
    lines.sort(key=lambda line: (line["time_ms"], line["kind"], line["order_id"],
                                 line["out_refund_no"]))
    return lines


def statement_totals(lines: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    lines = list(lines)
    return {"payments": sum(1 for line in lines if line["kind"] == "payment"),
            "refunds": sum(1 for line in lines if line["kind"] == "refund"),
            **{column: sum(line[column] for line in lines)
               for column in ("amount_fen", "fee_fen", "net_fen")}}


def statement_csv(paid: Iterable[Mapping[str, Any]],
                  refunds: Iterable[Mapping[str, Any]]) -> bytes:
    """CSV bytes (header first, lines in time order)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(statement_lines(paid, refunds))
    return buffer.getvalue().encode()
