"""The refund screen: amount (all or part), reason, sending, and following the result.

A mixin of ``VendorApp``. Sending runs off the UI thread; the outbox's retry loop and the
gateway's result both land in the outbox, so the screen re-reads the sale from there.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from kivy.clock import Clock

from market_protocol import format_fen

from .refund_model import RefundModel
from .strings import text
from .vendor_binding import TerminalBinding

__all__ = ["RefundActions"]


class RefundActions(TerminalBinding):
    """Refund-screen actions; expects the attributes ``VendorApp`` defines."""

    manager: Any
    refund: RefundModel | None
    selected_sale: str | None
    refund_busy: bool

    if TYPE_CHECKING:
        def refresh(self) -> None: ...
        def _draw_sales(self) -> None: ...

    def open_refund(self) -> None:
        """The selected paid sale's refund screen (amount, reason, result)."""
        stored = self.terminal.sale(self.selected_sale) if self.selected_sale else None
        if stored is None:
            self.model.tell("need_sale", error=True)
            self._draw_sales()
            return
        refund = RefundModel(stored, self.terminal.request_refund, self.model.lang)
        if not refund.can_refund:
            self.model.tell("refund_not_paid", error=True)
            self._draw_sales()
            return
        self.refund = refund
        self.model.notice = None
        self.manager.get_screen("refund").ids.refund_words.text = ""
        self.manager.current = "refund"
        self.refresh()

    def close_refund(self) -> None:
        self.refund = None
        self.manager.current = "sales"
        self._draw_sales()

    def refund_press(self, key: str) -> None:
        if self.refund is not None:
            self.refund.notice = None
            self.refund.press(key)
            self.refresh()

    def refund_choose(self, reason: str) -> None:
        if self.refund is not None and self.refund.outcome is None:
            self.refund.choose_reason(reason)
            self.refresh()

    def refund_words(self, words: str) -> None:
        if self.refund is not None and self.refund.outcome is None:
            self.refund.set_free_text(words)

    def refund_send(self) -> None:
        """Queue and try to send off the UI thread: a slow gateway must not freeze the stall."""
        refund = self.refund
        if refund is None or self.refund_busy:
            return
        self.refund_busy = True

        def send() -> None:
            refund.submit()
            Clock.schedule_once(lambda dt: self._refund_sent(refund), 0)
        threading.Thread(target=send, name="refund", daemon=True).start()

    def _refund_sent(self, refund: RefundModel) -> None:
        self.refund_busy = False
        if refund.outcome is not None:
            self.model.tell("refund_requested")
        self.refresh()

    def _follow_refund(self) -> None:
        """The retry loop sends queued refunds and the gateway's result carries the refunded
        amount: both land in the outbox, so re-read the sale and its request from there."""
        refund = self.refund
        if refund is None or self.refund_busy:
            return
        stored = self.terminal.sale(refund.sale.sale_id)
        request = (self.terminal.outbox.request(refund.outcome["refund_no"])
                   if refund.outcome else None)
        if stored is not None:
            refund.update(stored, request)

    def _refresh_refund(self, refund: RefundModel, lang: str) -> None:
        refund.lang = lang
        sale = refund.sale
        self.refund_title = text("refund_title", lang, seq=sale.seq,
                                 paid=format_fen(sale.total_fen),
                                 left=format_fen(refund.refundable_fen))
        if refund.keypad.buffer:
            self.refund_amount_text = f"¥{refund.keypad.buffer}"
        else:
            self.refund_amount_text = text("refund_all", lang,
                                           amount=format_fen(refund.refundable_fen))
        self.refund_reason = refund.reason or ""
        self.refund_status = refund.status_text()
        self.refund_done = refund.outcome is not None
        self.refund_refused = bool(refund.outcome and refund.outcome.get("state") == "refused")
        if refund.notice is not None:
            self.notice_text = refund.notice_text()
            self.notice_error = refund.notice.error
