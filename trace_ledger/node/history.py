"""A node's own view of the committed history: devices enrolled and lots on hand, derived
only from entries this node committed (never from the bridge's index), plus its stream
position and the transactions it refused.

The tables live in the node's store file and change in the same SQLite transaction as the
block that changed them, so after a crash the view and the blocks always agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..entries import LedgerEntry
from ..node_store import NodeStore
from ..rules.allocation import LineAllocation, Lot
from ..rules.contract import DeviceRecord

__all__ = ["History", "SCHEMA"]

SCHEMA = [
    "CREATE TABLE IF NOT EXISTS node_progress (id INTEGER PRIMARY KEY CHECK (id = 1), "
    "stream_seq INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS node_refused (stream_seq INTEGER NOT NULL, "
    "position INTEGER NOT NULL, record_id TEXT, kind TEXT, reason TEXT NOT NULL, "
    "PRIMARY KEY (stream_seq, position))",
    "CREATE TABLE IF NOT EXISTS node_devices (device_id TEXT PRIMARY KEY, "
    "merchant_id TEXT NOT NULL, enrolled_at_ms INTEGER NOT NULL, revoked_at_ms INTEGER)",
    "CREATE TABLE IF NOT EXISTS node_lots (lot_id TEXT PRIMARY KEY, holder TEXT NOT NULL, "
    "product TEXT NOT NULL, measure TEXT NOT NULL, amount INTEGER NOT NULL, "
    "remaining INTEGER NOT NULL, received_at_ms INTEGER NOT NULL, label TEXT)",
]

Statement = tuple[str, Sequence[Any]]


class History:
    """The view one stream message is checked against: the committed tables, overlaid with
    what the message's earlier admitted entries changed (committed with its block)."""

    def __init__(self, store: NodeStore, *, enrol_unknown_devices: bool = True) -> None:
        self.store = store
        self.enrol_unknown_devices = enrol_unknown_devices
        store.execute([(statement, ()) for statement in SCHEMA])
        self._devices: dict[str, DeviceRecord] = {}
        self._lots: dict[str, Lot] = {}

    # -- the stream position -------------------------------------------------------------
    def stream_seq(self) -> int:
        rows = self.store.query("SELECT stream_seq FROM node_progress WHERE id = 1")
        return rows[0][0] if rows else 0

    # -- the view ------------------------------------------------------------------------
    def device(self, device_id: str) -> DeviceRecord | None:
        if device_id in self._devices:
            return self._devices[device_id]
        rows = self.store.query("SELECT device_id, merchant_id, enrolled_at_ms, revoked_at_ms "
                                "FROM node_devices WHERE device_id = ?", (device_id,))
        return DeviceRecord(*rows[0]) if rows else None

    def lot(self, lot_id: str) -> Lot | None:
        if lot_id in self._lots:
            return self._lots[lot_id]
        rows = self.store.query("SELECT lot_id, holder, product, measure, amount, remaining, "
                                "received_at_ms, label FROM node_lots WHERE lot_id = ?",
                                (lot_id,))
        return Lot(*rows[0]) if rows else None

    def device_for_trade(self, trade: Any) -> DeviceRecord | None:
        """The device a trade is checked against. A terminal the gateway enrolled and whose
        trade it signed is registered by its first trade when no enrolment is on the
        ledger, exactly as the bridge does (``enrol_unknown_devices``)."""
        try:
            device_id, merchant = trade["sale"]["device_id"], trade["seller"]["merchant_id"]
        except (KeyError, TypeError):
            return None
        if not isinstance(device_id, str):
            return None
        known = self.device(device_id)
        if known is not None or not self.enrol_unknown_devices or not isinstance(merchant, str):
            return known
        return DeviceRecord(device_id, merchant, 0)

    # -- applying admitted entries ---------------------------------------------------------
    def admit(self, entry: LedgerEntry) -> None:
        """Fold an admitted entry into the overlay (what later entries are checked against)."""
        record = entry.record
        if entry.kind == "device":
            self._devices[record["device_id"]] = DeviceRecord(
                record["device_id"], record["merchant_id"], record["enrolled_at_ms"],
                record.get("revoked_at_ms"))
        elif entry.kind == "trade_private":
            trade = record["trade"]
            device = self.device_for_trade(trade)
            if device is not None and self.device(device.device_id) is None:
                self._devices[device.device_id] = device
        elif entry.kind == "trade":
            buyer = (record.get("buyer") or {}).get("merchant_id")
            if buyer is not None:
                for line in record.get("lines", []):
                    self._lots[line["lot_id"]] = Lot(
                        line["lot_id"], buyer, line["product"], line["measure"],
                        line["amount"], line["amount"], record["sold_at_ms"], line.get("lot"))
        elif entry.kind == "allocation":
            allocation = LineAllocation.from_record(record)
            for draw in allocation.draws:
                lot = self.lot(draw.lot_id)
                if lot is not None:
                    self._lots[draw.lot_id] = Lot(lot.lot_id, lot.holder, lot.product,
                                                  lot.measure, lot.amount,
                                                  lot.remaining - draw.amount,
                                                  lot.received_at_ms, lot.label)

    def statements(self, stream_seq: int,
                   refused: Sequence[tuple[int, str | None, str | None, str]]) -> list[Statement]:
        """What to commit with the message's block (or alone, when it made none); clears
        the overlay."""
        out: list[Statement] = [
            ("INSERT INTO node_progress (id, stream_seq) VALUES (1, ?) "
             "ON CONFLICT(id) DO UPDATE SET stream_seq = excluded.stream_seq", (stream_seq,))]
        out += [("INSERT OR REPLACE INTO node_devices VALUES (?, ?, ?, ?)",
                 (d.device_id, d.merchant_id, d.enrolled_at_ms, d.revoked_at_ms))
                for d in self._devices.values()]
        out += [("INSERT OR REPLACE INTO node_lots VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                 (lot.lot_id, lot.holder, lot.product, lot.measure, lot.amount, lot.remaining,
                  lot.received_at_ms, lot.label)) for lot in self._lots.values()]
        out += [("INSERT OR REPLACE INTO node_refused VALUES (?, ?, ?, ?, ?)",
                 (stream_seq, position, record_id, kind, reason))
                for position, record_id, kind, reason in refused]
        self.discard()
        return out

    def discard(self) -> None:
        self._devices.clear()
        self._lots.clear()

    def refused(self, after_seq: int = 0, limit: int = 100) -> list[dict[str, Any]]:
        rows = self.store.query(
            "SELECT stream_seq, position, record_id, kind, reason FROM node_refused "
            "WHERE stream_seq > ? ORDER BY stream_seq, position LIMIT ?", (after_seq, limit))
        return [{"stream_seq": r[0], "position": r[1], "record_id": r[2], "kind": r[3],
                 "reason": r[4]} for r in rows]
