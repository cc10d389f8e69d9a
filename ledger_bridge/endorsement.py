"""The endorsement rule each ledger node runs on every entry before it signs a block.

It re-runs the contract on the full trade (schema, gateway signature, amounts, device
enrolled at the time) and re-checks that each allocation conserves quantity against the
lots as the index holds them, so a bug or a tampered writer upstream of the ledger cannot
slip an inconsistent entry onto the chain unnoticed.
"""

from __future__ import annotations

from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from .allocation import LineAllocation, Lot, check_allocation
from .contract import check_trade_contract
from .ledger import LedgerEntry
from .public_view import PRIVATE_SCHEMA, PUBLIC_SCHEMA
from .trace_store import TraceStore

__all__ = ["make_endorse"]


def make_endorse(store: TraceStore, gateway_key: Ed25519PublicKey
                 ) -> Callable[[LedgerEntry], str | None]:
    def endorse(entry: LedgerEntry) -> str | None:
        record = entry.record
        if entry.kind == "trade_private":
            if record.get("schema") != PRIVATE_SCHEMA:
                return "private trade record has the wrong schema"
            trade = record["trade"]
            device = store.device(trade["sale"]["device_id"])
            verdict = check_trade_contract(trade, gateway_key, device)
            return None if verdict.ok else f"{verdict.code}: {verdict.reason}"
        if entry.kind == "trade":
            if record.get("schema") != PUBLIC_SCHEMA or entry.record_id != record["trade_id"]:
                return "public trade record has the wrong schema or id"
            return None
        if entry.kind == "allocation":
            allocation = LineAllocation.from_record(record)
            lots: dict[str, Lot] = {}
            for draw in allocation.draws:
                row = store.line(draw.lot_id)
                if row is not None and row["buyer"] is not None:
                    lots[draw.lot_id] = Lot(row["lot_id"], row["buyer"], row["product"],
                                            row["measure"], row["amount"], row["remaining"],
                                            row["received_at_ms"], row["label"])
            return check_allocation(allocation, lots)
        if entry.kind == "rejected":
            return None if record.get("code") and record.get("reason") else \
                "a rejected entry must say why"
        return None

    return endorse
