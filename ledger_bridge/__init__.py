"""ledger_bridge: confirmed trades in, buyer-seller chains on a three-organisation ledger,
trace answers out.

Pure core: ``contract`` (the rules every node endorses by), ``allocation`` (FIFO mass
balance), ``catalogue``, ``public_view`` (what the world may see of a trade), ``tracing``,
``epcis`` and ``digital_link``. I/O shell: ``trace_store`` (SQLite index), ``intake`` and
``writer`` (the single writer), ``mqtt_consumer``, ``app`` with ``trace_routes``,
``admin_routes`` and ``http_input`` (Flask), ``reader`` (read-only HTTP workers),
``service`` and ``cli``. The ledger itself is ``trace_ledger``.
"""

from typing import Any

from trace_ledger.rules.allocation import Draw, LineAllocation, Lot, allocate_line, check_allocation
from trace_ledger.rules.contract import DeviceRecord, Verdict, check_trade_contract

from .catalogue import Catalogue, CatalogueEntry

__all__ = ["Draw", "LineAllocation", "Lot", "allocate_line", "check_allocation", "Catalogue",
           "CatalogueEntry", "DeviceRecord", "Verdict", "check_trade_contract",
           "BridgeService", "create_app"]


def __getattr__(name: str) -> Any:
    """``BridgeService`` and ``create_app`` load Flask, paho and the ledger: only on use."""
    if name == "BridgeService":
        from .service import BridgeService

        return BridgeService
    if name == "create_app":
        from .app import create_app

        return create_app
    raise AttributeError(name)
