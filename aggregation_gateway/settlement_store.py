"""The I/O side of settlement and reconciliation: reading our books for a day, fetching
the platform's statement, remembering mismatches so unmatched lines carry forward."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from .channels.base import ChannelError
from .database import now_ms, transaction
from .payment_states import FINAL_PAID
from .settlement import Reconciliation, VendorDay, fee_fen, reconcile, refund_fee_fen, settle
from .wiring import Gateway

__all__ = ["day_bounds_ms", "vendor_day", "our_lines", "run_reconciliation", "open_items",
           "parse_day", "reconciled"]


#: The days a settlement or a statement may be asked for: the ends of the calendar
#: (0001-01-01, 9999-12-31) have no neighbouring day to page to.
FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2999, 12, 31)


def parse_day(text: str) -> date:
    """``YYYY-MM-DD`` between FIRST_DAY and LAST_DAY, or ValueError."""
    if len(text) != 10 or not text.isascii():
        raise ValueError("expected YYYY-MM-DD")
    day = date.fromisoformat(text)
    if not FIRST_DAY <= day <= LAST_DAY:
        raise ValueError(f"the day must be between {FIRST_DAY} and {LAST_DAY}")
    return day


def day_bounds_ms(day: date) -> tuple[int, int]:
    """[start, end) of a UTC calendar day, the platform's statement day."""
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return int(start.timestamp() * 1000), int((start + timedelta(days=1)).timestamp() * 1000)


def _day_rows(gw: Gateway, day: date) -> tuple[list[Any], list[dict[str, Any]]]:
    start, end = day_bounds_ms(day)
    conn = gw.db.conn
    payments = conn.execute(
        "SELECT payment_id, merchant_id, amount_fen, status FROM payments WHERE paid_at_ms >= ?"
        " AND paid_at_ms < ? AND status IN ('paid', 'partially_refunded', 'refunded')"
        # Cash never passed through a platform: no fee, no payout, not on any statement.
        " AND channel != 'cash'",
        (start, end)).fetchall()
    refunds = []
    rows = conn.execute(
        "SELECT r.refund_id, r.payment_id, r.merchant_id, r.amount_fen, r.created_at_ms, "
        "p.amount_fen AS paid_fen FROM refunds r JOIN payments p USING (payment_id) "
        "WHERE r.status = 'success' AND r.created_at_ms >= ? AND r.created_at_ms < ?",
        (start, end)).fetchall()
    for row in rows:
        before = conn.execute(
            "SELECT CAST(COALESCE(SUM(amount_fen), 0) AS BIGINT) FROM refunds WHERE payment_id = ? "
            "AND "
            "status = 'success' AND (created_at_ms < ? OR (created_at_ms = ? AND "
            "refund_id < ?))", (row["payment_id"], row["created_at_ms"], row["created_at_ms"],
                                row["refund_id"])).fetchone()[0]
        refunds.append({**dict(row), "refunded_before_fen": before})
    return payments, refunds


def vendor_day(gw: Gateway, day: date) -> list[VendorDay]:
    payments, refunds = _day_rows(gw, day)
    names = {row["merchant_id"]: row["name"] for row in gw.db.conn.execute(
        "SELECT merchant_id, name FROM merchants")}
    return settle(payments, refunds, names, gw.settings["fee_rate_ppm"])


def our_lines(gw: Gateway, day: date) -> dict[str, dict[str, Any]]:
    payments, refunds = _day_rows(gw, day)
    rate = gw.settings["fee_rate_ppm"]
    lines = {f"payment:{p['payment_id']}": {"amount_fen": p["amount_fen"],
                                            "fee_fen": fee_fen(p["amount_fen"], rate)}
             for p in payments}
    for refund in refunds:
        lines[f"refund:{refund['refund_id']}"] = {
            "amount_fen": -refund["amount_fen"],
            "fee_fen": -refund_fee_fen(refund["paid_fen"], refund["refunded_before_fen"],
                                       refund["amount_fen"], rate)}
    return lines


def _their_lines(statement: dict[str, Any]) -> dict[str, dict[str, Any]]:
    lines = {}
    for line in statement.get("lines", []):
        key = (f"payment:{line['out_trade_no']}" if line["kind"] == "payment"
               else f"refund:{line['out_refund_no']}")
        lines[key] = {"amount_fen": int(line["amount_fen"]), "fee_fen": int(line["fee_fen"])}
    return lines


def reconciled(gw: Gateway, day: date) -> bool:
    return gw.db.conn.execute("SELECT 1 FROM reconciliation_runs WHERE statement_date = ?",
                              (day.isoformat(),)).fetchone() is not None


def open_items(gw: Gateway) -> list[dict[str, Any]]:
    return [dict(row) for row in gw.db.conn.execute(
        "SELECT first_date, last_date, out_trade_no AS key, kind, detail FROM "
        "reconciliation_items WHERE resolved_on IS NULL ORDER BY first_date, key")]


def run_reconciliation(gw: Gateway, day: date, channel: str = "sandbox") -> Reconciliation:
    """Fetch the platform's statement for ``day`` and reconcile it with our books."""
    adapter = gw.channels.get(channel)
    if adapter is None or not hasattr(adapter, "statement"):
        raise ChannelError("no_statement", f"channel {channel} offers no daily statement")
    statement = adapter.statement(day.isoformat())
    theirs = _their_lines(statement)
    ours = our_lines(gw, day)
    conn = gw.db.conn
    statuses = {}
    for key in set(theirs) - set(ours):
        kind, _, ident = key.partition(":")
        if kind == "payment":
            row = conn.execute("SELECT status FROM payments WHERE payment_id = ?",
                               (ident,)).fetchone()
            if row is not None and row["status"] not in FINAL_PAID:
                statuses[key] = row["status"]
    earlier = {item["key"]: item["kind"] for item in open_items(gw)
               if item["first_date"] < day.isoformat()}
    result = reconcile(ours, theirs, statuses, earlier)
    iso = day.isoformat()
    with transaction(conn):
        gw.db.serialise(conn, f"reconciliation:{iso}")  # two managers at once: one by one
        conn.execute("DELETE FROM statement_items WHERE statement_date = ?", (iso,))
        conn.executemany("INSERT INTO statement_items VALUES (?, ?, ?, ?, ?, ?)", [
            (iso, key, key.partition(":")[0], line["amount_fen"], line["fee_fen"], "listed")
            for key, line in theirs.items()])
        conn.execute("DELETE FROM reconciliation_items WHERE first_date = ? AND "
                     "resolved_on IS NULL", (iso,))
        for mismatch in result.mismatches:
            conn.execute("INSERT INTO reconciliation_items (first_date, last_date, "
                         "out_trade_no, kind, detail) VALUES (?, ?, ?, ?, ?) ON CONFLICT "
                         "(out_trade_no, kind) DO UPDATE SET last_date = excluded.last_date, "
                         "detail = excluded.detail",
                         (iso, iso, mismatch.key, mismatch.kind, mismatch.detail))
        for key in result.resolved:
            conn.execute("UPDATE reconciliation_items SET resolved_on = ? WHERE "
                         "out_trade_no = ? AND resolved_on IS NULL", (iso, key))
        conn.execute("INSERT INTO reconciliation_runs VALUES (?, ?, ?, ?) ON CONFLICT "
                     "(statement_date) DO UPDATE SET run_at_ms = excluded.run_at_ms, "
                     "matched = excluded.matched, mismatches = excluded.mismatches",
                     (iso, now_ms(), result.matched, len(result.mismatches)))
        for key in result.carried:
            conn.execute("UPDATE reconciliation_items SET last_date = ? WHERE out_trade_no = ? "
                         "AND resolved_on IS NULL AND last_date < ?", (iso, key, iso))
    return result
