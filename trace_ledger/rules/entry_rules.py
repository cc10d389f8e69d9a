"""Whether one ledger entry may be committed, given the committed history as a view.

The same rule runs in the bridge (before it proposes an entry) and in every organisation's
node (before it admits the entry into its own block), so a bridge that got a trade wrong,
or a writer that forged one, is refused by the nodes that did not write it. The view says
what the history holds: the devices enrolled and the lots bought and still on hand.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from ..entries import LedgerEntry
from .allocation import LineAllocation, Lot, check_allocation
from .contract import DeviceRecord, Verdict

__all__ = ["PUBLIC_SCHEMA", "PRIVATE_SCHEMA", "HistoryView", "check_entry"]

PUBLIC_SCHEMA = "tracepay.trade_public/1"
PRIVATE_SCHEMA = "tracepay.trade_private/1"


class HistoryView(Protocol):
    """What an entry is checked against: the state the committed entries before it left."""

    def device(self, device_id: str) -> DeviceRecord | None: ...

    def lot(self, lot_id: str) -> Lot | None: ...


def check_entry(entry: LedgerEntry, view: HistoryView,
                contract: Callable[[Any, DeviceRecord | None], Verdict]) -> str | None:
    """``None`` to admit ``entry``, or the reason it is refused. ``contract`` checks a whole
    gateway-signed trade against the device record (``check_trade_contract`` with the
    gateway's key bound)."""
    record = entry.record
    if entry.kind == "trade_private":
        if record.get("schema") != PRIVATE_SCHEMA or not isinstance(record.get("trade"), dict):
            return "private trade record has the wrong schema"
        trade = record["trade"]
        sale = trade.get("sale")
        device_id = sale.get("device_id") if isinstance(sale, dict) else None
        device = view.device(device_id) if isinstance(device_id, str) else None
        verdict = contract(trade, device)
        return None if verdict.ok else f"{verdict.code}: {verdict.reason}"
    if entry.kind == "trade":
        if record.get("schema") != PUBLIC_SCHEMA or entry.record_id != record.get("trade_id"):
            return "public trade record has the wrong schema or id"
        return None
    if entry.kind == "allocation":
        try:
            allocation = LineAllocation.from_record(record)
        except (KeyError, TypeError) as exc:
            return f"allocation record is malformed: {type(exc).__name__}: {exc}"
        lots = {draw.lot_id: lot for draw in allocation.draws
                if (lot := view.lot(draw.lot_id)) is not None}
        return check_allocation(allocation, lots)
    if entry.kind == "rejected":
        return None if record.get("code") and record.get("reason") else \
            "a rejected entry must say why"
    return None
