"""The ledger entries of a market's trades, made by the bridge's own intake (not timed).

The nodes validate every entry themselves (the gateway's signature on each trade, the
device, each allocation against the lots the node's own history holds), so the benchmark
cannot feed them stand-ins: the trades are gateway-signed (``sample_trades.make_trade``),
and ``ledger_bridge.intake.Intake`` turns each into the entries the bridge publishes (the
public trade, the private one only the parties' nodes keep, one FIFO allocation per line)
against a real trace index. The intake's ledger here only collects what it is handed;
the timed run hands the same entries to the bridge's ``StreamLedger``.

The market: a farm sells to a wholesaler, the wholesaler to 50 stalls, each stall to 40
shoppers per purchase (``bench/bridge_intake.py``'s market), so most allocations draw on
lots a node must find in its own history.
"""

from __future__ import annotations

import secrets
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bridge_intake import market_trades  # noqa: E402

from ledger_bridge.catalogue import DEFAULT_ENTRIES, Catalogue  # noqa: E402
from ledger_bridge.intake import Intake  # noqa: E402
from ledger_bridge.trace_store import TraceStore  # noqa: E402
from trace_ledger import LedgerEntry  # noqa: E402
from trace_ledger.entries import Location, Receipt  # noqa: E402
from trace_ledger.rules.contract import check_trade_contract  # noqa: E402

__all__ = ["Market"]

STALLS = 50


class _Collector:
    """The intake's ledger: takes every entry, knows nothing committed."""

    def __init__(self) -> None:
        self.groups: list[list[LedgerEntry]] = []

    def submit(self, entries: Sequence[LedgerEntry]) -> list[Receipt]:
        self.groups.append(list(entries))
        return [Receipt(entry.record_id, "accepted") for entry in entries]

    def locate(self, key: str) -> list[Location]:
        return []

    def get(self, record_id: str, org: str | None = None) -> Any:
        return None


class Market:
    """The market's trades, made ``count`` more at a time by one intake (so later trades
    draw on the lots earlier ones bought)."""

    def __init__(self, key: Ed25519PrivateKey, work_dir: Path) -> None:
        self.key, self.made = key, 0
        work_dir.mkdir(parents=True, exist_ok=True)
        self.store = TraceStore(work_dir / "index.sqlite")
        self.store.put_party("whole-1", "Wholesale", "wholesale_market", ["pay-whole"])
        for index in range(STALLS):
            self.store.put_party(f"stall-{index}", f"Stall {index}", "retail_market",
                                 [f"pay-stall-{index}"])
        self.collector = _Collector()
        catalogue = Catalogue.of(DEFAULT_ENTRIES)
        public = key.public_key()
        self.intake = Intake(self.collector, self.store,
                             contract=lambda trade, device: check_trade_contract(
                                 trade, public, device),
                             secret=secrets.token_bytes(32), catalogue=lambda: catalogue)

    def entries(self, count: int) -> list[list[LedgerEntry]]:
        """The entry groups of the next ``count`` trades, one group per trade."""
        signed = market_trades(self.key, self.made + count, STALLS)[self.made:]
        self.made += count
        self.collector.groups = []
        for start in range(0, len(signed), 500):
            with self.store.batch():
                for trade in signed[start:start + 500]:
                    status = self.intake.trade(trade).status
                    if status != "accepted":
                        raise RuntimeError(f"the intake did not accept {trade['trade_id']}: "
                                           f"{status}")
        return self.collector.groups

    def close(self) -> None:
        self.store.close()
