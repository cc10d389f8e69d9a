"""The day's screens: the sales list (void, print, refund from it) and the Z report.

A mixin of ``VendorApp``. Printing runs in the background (a paper-out printer must not
freeze the stall) and reports back as a notice on the UI thread.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kivy.clock import Clock

from market_protocol import format_fen

from ..day_report import day_start_ms, day_summary, render_z_report
from ..terminal import TerminalError
from .day_model import sale_view, z_report_lines
from .messages import Notice, service_notice
from .print_jobs import print_in_background
from .status_look import status_colour, status_icon
from .strings import text
from .vendor_binding import TerminalBinding
from .vendor_widgets import SaleRow

__all__ = ["DayActions"]


def _sale_amount(total_fen: int, refunded_fen: int) -> str:
    """A row's amount, with what the gateway says was refunded of it."""
    if not refunded_fen:
        return format_fen(total_fen)
    return f"{format_fen(total_fen)} (-{format_fen(refunded_fen)})"



class DayActions(TerminalBinding):
    """Sales-list and Z-report actions; expects the attributes ``VendorApp`` defines."""

    manager: Any
    counter: Any
    selected_sale: str | None
    merchant_name: str
    z_report_text: str
    unsent_warning: str
    has_cjk_font: bool

    if TYPE_CHECKING:
        def refresh(self) -> None: ...

    def show_ring_up(self) -> None:
        self.manager.current = "ring_up"
        self.refresh()

    def show_sales(self) -> None:
        self.manager.current = "sales"
        self._draw_sales()

    def _draw_sales(self) -> None:
        rows = self.manager.get_screen("sales").ids.sale_rows
        rows.clear_widgets()
        lang = self.model.lang
        for stored in reversed(self.terminal.today_sales()):
            view = sale_view(stored)
            row = SaleRow(seq=view.seq, sale_id=view.sale_id,
                          summary=f"#{view.seq}  {view.time}",
                          status=f"{status_icon(view.status, self.has_cjk_font)} "
                                 f"{text(f'status_{view.status}', lang)}",
                          status_key=view.status, status_rgba=status_colour(view.status),
                          amount=_sale_amount(view.total_fen, stored.refunded_fen),
                          selected=view.sale_id == self.selected_sale, tap_id=f"sale-{view.seq}")
            row.bind(on_release=lambda row: self._select_sale(row.sale_id))
            rows.add_widget(row)
        self.refresh()

    def _select_sale(self, sale_id: str) -> None:
        self.selected_sale = None if sale_id == self.selected_sale else sale_id
        self._draw_sales()

    def void_selected(self) -> None:
        if not self.selected_sale:
            self.model.tell("need_sale", error=True)
        else:
            try:
                self.terminal.void(self.selected_sale)
                pending = self.model.pending
                if pending is not None and pending.sale_id == self.selected_sale:
                    self.model.cancel_charge()  # its QR must not stay on the display
                self.model.tell("voided")
            except TerminalError as exc:
                self.model.notice = service_notice("void_failed", exc)
        self._draw_sales()

    def print_receipt(self) -> None:
        """The selected sale's receipt; with none selected, the last receipt again."""
        sale_id, counter = self.selected_sale, self.counter
        job = (lambda: counter.print_receipt(sale_id)) if sale_id else counter.reprint_last
        print_in_background(job, self._printed)

    def print_z_report(self) -> None:
        print_in_background(lambda: self.counter.print_z_report(force=True), self._printed)

    def _printed(self, notice: Notice) -> None:
        def show(dt: float) -> None:
            self.model.notice = notice
            self.refresh()
        Clock.schedule_once(show)

    def _day_summary(self) -> dict[str, Any]:
        day_ms = day_start_ms(int(time.time() * 1000))
        return day_summary(self.terminal.today_sales(), day_ms=day_ms)

    def show_z_report(self) -> None:
        lang = self.model.lang
        summary = self._day_summary()
        lines = z_report_lines(summary, lang, self.merchant_name, self.terminal.device_id)
        self.z_report_text = lines[0] + "\n\n" + "\n".join(lines[1:])
        unsent = self.terminal.outbox_counts()["queued"]
        self.unsent_warning = text("unsent_warning", lang, count=unsent) if unsent else ""
        self.manager.current = "z_report"
        self.refresh()

    def save_z_report(self) -> Path:
        """The day's Z report as a receipt-width PNG in ``<data-dir>/reports/``."""
        summary = self._day_summary()
        png = render_z_report(summary, merchant=self.merchant_name,
                              device_id=self.terminal.device_id,
                              printed_at=datetime.now().astimezone().isoformat(timespec="seconds"))
        path = self.terminal.data_dir / "reports" / f"z-{summary['day']}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png)
        self.model.tell("saved_to", path=str(path))
        self.refresh()
        return path
