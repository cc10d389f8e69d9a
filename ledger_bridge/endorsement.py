"""The endorsement rule each ledger node runs on every entry before it signs a block.

It re-runs the contract on the full trade (schema, gateway signature, amounts, device
enrolled at the time) and re-checks that each allocation conserves quantity against the
lots as the index holds them, so a bug or a tampered writer upstream of the ledger cannot
slip an inconsistent entry onto the chain unnoticed.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from trace_ledger import LedgerEntry
from trace_ledger.rules.allocation import Lot
from trace_ledger.rules.contract import DeviceRecord, Verdict, check_trade_contract
from trace_ledger.rules.entry_rules import check_entry

from .trace_store import TraceStore

__all__ = ["make_endorse", "ContractRunner"]


class ContractRunner:
    """Runs the contract, remembering recent verdicts.

    The contract is a pure function of the trade's bytes and the device record, so a verdict
    computed once holds for every node that runs the rule on the same input. The three
    nodes of one bridge process share this memory; nodes in separate processes would each
    compute their own.
    """

    def __init__(self, gateway_key: Ed25519PublicKey, size: int = 4096) -> None:
        self.gateway_key = gateway_key
        self.size = size
        self._seen: OrderedDict[tuple[bytes, DeviceRecord | None], Verdict] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, trade: Any, device: DeviceRecord | None) -> Verdict:
        try:
            key = (hashlib.sha256(orjson.dumps(trade, option=orjson.OPT_SORT_KEYS)).digest(),
                   device)
        except TypeError:
            return check_trade_contract(trade, self.gateway_key, device)
        with self._lock:
            verdict = self._seen.get(key)
            if verdict is not None:
                self._seen.move_to_end(key)
                return verdict
        verdict = check_trade_contract(trade, self.gateway_key, device)
        with self._lock:
            self._seen[key] = verdict
            while len(self._seen) > self.size:
                self._seen.popitem(last=False)
        return verdict


class _IndexView:
    """The bridge's index as the rule's view of history."""

    def __init__(self, store: TraceStore) -> None:
        self.store = store

    def device(self, device_id: str) -> DeviceRecord | None:
        return self.store.device(device_id)

    def lot(self, lot_id: str) -> Lot | None:
        row = self.store.line(lot_id)
        if row is None or row["buyer"] is None:
            return None
        return Lot(row["lot_id"], row["buyer"], row["product"], row["measure"], row["amount"],
                   row["remaining"], row["received_at_ms"], row["label"])


def make_endorse(store: TraceStore, contract: ContractRunner
                 ) -> Callable[[LedgerEntry], str | None]:
    """The rule for ``Ledger.open(endorse=...)``.

    The ledger asks each node in turn about the same entry object at the same moment; the
    answer for that object is kept until the next entry, so the nodes of one process share
    one evaluation of a deterministic rule.
    """
    view = _IndexView(store)
    last: list[Any] = [None, None]
    lock = threading.Lock()

    def endorse(entry: LedgerEntry) -> str | None:
        with lock:
            if last[0] is entry:
                return last[1]
            verdict = rule(entry)
            last[0], last[1] = entry, verdict
            return verdict

    def rule(entry: LedgerEntry) -> str | None:
        return check_entry(entry, view, contract)

    return endorse
