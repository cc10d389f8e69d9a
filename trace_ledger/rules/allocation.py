"""FIFO mass-balance allocation: which purchased lots a sale line was taken from.

Produce is split and mixed between farm and shopper, so a sale cannot carry one code from
the field. Instead each line a vendor sells is drawn, oldest first, from the lots of the
same product that vendor bought earlier: one purchase feeds many sales, one sale may draw on
several purchases, and a partial remainder stays on hand for the next sale. Selling more
than was bought is a finding (``unmatched``), not an error: the trade still happened.

Pure: lots and allocations are values; the store persists them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

__all__ = ["Lot", "Draw", "LineAllocation", "allocate_line", "check_allocation", "lot_id_for"]


def lot_id_for(trace_code: str, line_index: int) -> str:
    """A lot is one line of one trade: ``<trace code>-<line index>``.

    Short and printable (at most 20 characters, so it also fits GS1's batch/lot field) and
    it leads straight back to the trade through the trace code.
    """
    return f"{trace_code}-{line_index}"


@dataclass(frozen=True)
class Lot:
    """Goods on hand at ``holder``: ``amount`` grams (or pieces) received, ``remaining`` left."""

    lot_id: str
    holder: str
    product: str
    measure: str  # "g" or "piece"
    amount: int
    remaining: int
    received_at_ms: int
    label: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"lot_id": self.lot_id, "holder": self.holder, "product": self.product,
                "measure": self.measure, "amount": self.amount, "remaining": self.remaining,
                "received_at_ms": self.received_at_ms, "label": self.label}


@dataclass(frozen=True)
class Draw:
    lot_id: str
    amount: int


@dataclass(frozen=True)
class LineAllocation:
    """Line ``line`` of sale ``trade_id``: ``amount`` = Σ draws + ``unmatched``."""

    trade_id: str
    line: int
    holder: str
    product: str
    measure: str
    amount: int
    draws: tuple[Draw, ...]
    unmatched: int

    def to_record(self) -> dict[str, Any]:
        """The ledger record (schema ``tracepay.allocation/1``); integers only."""
        return {"schema": "tracepay.allocation/1", "trade_id": self.trade_id, "line": self.line,
                "holder": self.holder, "product": self.product, "measure": self.measure,
                "amount": self.amount, "unmatched": self.unmatched,
                "draws": [{"lot_id": d.lot_id, "amount": d.amount} for d in self.draws]}

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> LineAllocation:
        draws = tuple(Draw(d["lot_id"], d["amount"]) for d in record["draws"])
        return cls(record["trade_id"], record["line"], record["holder"], record["product"],
                   record["measure"], record["amount"], draws, record["unmatched"])


def _fifo_order(lots: Iterable[Lot], label: str | None) -> list[Lot]:
    """A line naming a lot draws on that lot first; the rest oldest first."""
    def key(lot: Lot) -> tuple[int, int, str]:
        named = 0 if label and label in (lot.label, lot.lot_id) else 1
        return (named, lot.received_at_ms, lot.lot_id)
    return sorted(lots, key=key)


def allocate_line(lots: Iterable[Lot], *, trade_id: str, line: int, holder: str,
                  product: str, measure: str, amount: int, at_ms: int,
                  label: str | None = None) -> tuple[LineAllocation, dict[str, Lot]]:
    """Allocate one sale line; returns the allocation and the lots it changed.

    Only ``holder``'s lots of the same product and measure, received at or before
    ``at_ms`` and with something left, are candidates. Precondition: ``amount`` > 0.
    """
    if amount <= 0:
        raise ValueError("a sale line allocates a positive amount")
    candidates = [lot for lot in lots if lot.holder == holder and lot.product == product
                  and lot.measure == measure and lot.remaining > 0
                  and lot.received_at_ms <= at_ms]
    need = amount
    draws: list[Draw] = []
    changed: dict[str, Lot] = {}
    for lot in _fifo_order(candidates, label):
        if need == 0:
            break
        take = min(need, lot.remaining)
        draws.append(Draw(lot.lot_id, take))
        changed[lot.lot_id] = replace(lot, remaining=lot.remaining - take)
        need -= take
    allocation = LineAllocation(trade_id, line, holder, product, measure, amount,
                                tuple(draws), need)
    return allocation, changed


def check_allocation(allocation: LineAllocation, lots: Mapping[str, Lot]) -> str | None:
    """Why ``allocation`` does not conserve quantity against ``lots`` (as they were before it),
    or None. The rule every ledger node runs before endorsing an allocation."""
    if allocation.amount <= 0:
        return "allocation amount must be positive"
    if allocation.unmatched < 0 or any(d.amount <= 0 for d in allocation.draws):
        return "draws and unmatched must be positive amounts"
    drawn = sum(d.amount for d in allocation.draws)
    if drawn + allocation.unmatched != allocation.amount:
        return (f"draws {drawn} + unmatched {allocation.unmatched} != line amount "
                f"{allocation.amount}")
    seen: set[str] = set()
    for draw in allocation.draws:
        lot = lots.get(draw.lot_id)
        if lot is None:
            return f"draw from unknown lot {draw.lot_id}"
        if draw.lot_id in seen:
            return f"lot {draw.lot_id} drawn twice in one line"
        seen.add(draw.lot_id)
        if lot.holder != allocation.holder:
            return f"lot {draw.lot_id} is held by {lot.holder}, not {allocation.holder}"
        if (lot.product, lot.measure) != (allocation.product, allocation.measure):
            return f"lot {draw.lot_id} is {lot.product}/{lot.measure}, not {allocation.product}"
        if draw.amount > lot.remaining:
            return f"draw {draw.amount} from lot {draw.lot_id} exceeds its remaining {lot.remaining}"
    return None
