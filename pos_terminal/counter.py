"""What stands on the counter beside the terminal: the receipt printer and the speaker.

``Counter(terminal)`` reads ``stall.json`` and subscribes to the terminal's payment results:
each paid sale is announced ("微信收款 12.50 元") and, with ``print_receipts``, printed.
Printing and speaking never run on the caller's thread: results arrive on the MQTT thread
and the screen's thread must not wait for a printer either.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime
from typing import Any

from .cart import Cart
from .outbox import StoredSale
from .printer import PrinterError, send_to_printer
from .receipt import receipt_bytes, z_report_bytes
from .stall_settings import StallSettings, load_stall_settings
from .tender import Tender, settle
from .terminal import ChargedSale, Terminal, TerminalError
from .voice import Announcer

__all__ = ["Counter", "LAST_RECEIPT_FILE"]

log = logging.getLogger(__name__)

#: Under the data directory: the sale id of the last receipt printed, for "reprint".
LAST_RECEIPT_FILE = "receipts/last_receipt"
_PAID = {"paid", "partially_refunded", "refunded"}


class Counter:
    def __init__(self, terminal: Terminal, settings: StallSettings | None = None, *,
                 announcer: Announcer | None = None) -> None:
        self.terminal = terminal
        self.settings = settings or load_stall_settings(terminal.data_dir)
        self.announcer = announcer or Announcer(volume=self.settings.voice_volume,
                                                muted=self.settings.voice_muted)
        self._unsubscribe = terminal.on_result(self._on_result)
        self.print_failures = 0

    # -- taking the money ----------------------------------------------------------------
    def settle(self, cart: Cart, *, all_cash: bool = False, cash_fen: int | None = None,
               received_fen: int | None = None) -> Tender:
        """The cart's tender under this stall's 抹零 rule (TenderError for bad amounts)."""
        return settle(cart.total_fen, rounding=self.settings.rounding, all_cash=all_cash,
                      cash_fen=cash_fen, received_fen=received_fen)

    def charge(self, cart: Cart, tender: Tender, *, render_png: bool = True) -> ChargedSale:
        """Keep the sale as settled: a cash sale is paid (and announced) at once, a mixed
        or QR sale shows a code for what is left."""
        return self.terminal.charge(cart, tender=tender, render_png=render_png)

    # -- receipts ------------------------------------------------------------------------
    def receipt(self, sale_id: str, *, reprint: bool = False) -> bytes:
        """The ESC/POS bytes of a sale's receipt (TerminalError for an unknown sale)."""
        sale = self._sale(sale_id)
        names_zh = {product.code: product.name_zh for product in self.terminal.catalogue()
                    if product.name_zh}
        return receipt_bytes(sale, stall=self.terminal.config.merchant_name,
                             device_id=self.terminal.device_id,
                             paper_mm=self.settings.paper_mm, names_zh=names_zh,
                             trace_base_url=self.settings.trace_url, reprint=reprint)

    def print_receipt(self, sale_id: str, *, reprint: bool = False) -> bytes:
        """Print a sale's receipt now and remember it as the last one; PrinterError if the
        printer cannot take it."""
        data = self.receipt(sale_id, reprint=reprint)
        send_to_printer(self.settings.printer, data)
        path = self.terminal.data_dir / LAST_RECEIPT_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(sale_id, encoding="utf-8")
        return data

    def last_receipt_sale_id(self) -> str | None:
        path = self.terminal.data_dir / LAST_RECEIPT_FILE
        return path.read_text(encoding="utf-8").strip() or None if path.exists() else None

    def reprint_last(self) -> bytes:
        """The last receipt again, marked 重印 REPRINT, with the sale's current status."""
        sale_id = self.last_receipt_sale_id()
        if sale_id is None:
            raise TerminalError("no receipt has been printed yet")
        return self.print_receipt(sale_id, reprint=True)

    def print_z_report(self, *, force: bool = False, now_ms: int | None = None) -> bytes:
        """Close the day (``Terminal.close_day``, same refusal while sales are unsent) and
        print its Z report."""
        report = self.terminal.close_day(force=force, now_ms=now_ms)
        stamp = (time.time() if now_ms is None else now_ms / 1000)
        printed = datetime.fromtimestamp(stamp).astimezone().strftime("%Y-%m-%d %H:%M")
        data = z_report_bytes(report.summary, stall=self.terminal.config.merchant_name,
                              device_id=self.terminal.device_id, printed_at=printed,
                              paper_mm=self.settings.paper_mm)
        send_to_printer(self.settings.printer, data)
        return data

    # -- results -------------------------------------------------------------------------
    def announce_paid(self, channel: str, amount_fen: int) -> None:
        self.announcer.announce(channel, amount_fen)

    def _on_result(self, stored: StoredSale, result: dict[str, Any]) -> None:
        if result.get("status") != "paid":
            return
        self.announcer.on_result(stored, result)
        if self.settings.print_receipts and self.settings.printer != "none":
            threading.Thread(target=self._print_quietly, args=(stored.sale_id,),
                             name="receipt", daemon=True).start()

    def _print_quietly(self, sale_id: str) -> None:
        try:
            self.print_receipt(sale_id)
        except (PrinterError, TerminalError) as exc:
            self.print_failures += 1
            log.warning("receipt for %s not printed: %s", sale_id, exc)

    def _sale(self, sale_id: str) -> StoredSale:
        sale = self.terminal.sale(sale_id)
        if sale is None:
            raise TerminalError(f"no sale {sale_id}")
        return sale

    def close(self) -> None:
        self._unsubscribe()
        self.announcer.close()
