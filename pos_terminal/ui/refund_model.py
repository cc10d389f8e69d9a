"""Refund of one paid sale, as the vendor does it at the stall, without Kivy.

Typically part of a sale comes back (a bad tomato, short weight), so the amount is typed on
the keypad in yuan — empty means everything still refundable — and must not exceed what is
left after earlier refunds. A reason is required: one of the preset reasons, free text, or
both. The request itself goes through ``Terminal.request_refund`` (outbox first, so it is
queued while the gateway is away); the screen then follows the request's state
(sent / queued / refused) and the sale's refunded amount as the gateway's result arrives.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from market_protocol import format_fen

from .keypad import Keypad, KeypadMode
from .messages import Notice, service_notice

__all__ = ["PRESET_REASONS", "RefundModel"]

#: Preset reasons: the key of their label in the strings table, and the code sent.
PRESET_REASONS: tuple[str, ...] = ("wrong_item", "quality", "short_weight", "changed_mind")
_MAX_REASON = 200
_REFUNDABLE = ("paid", "partially_refunded")


class RefundModel:
    """One refund screen for ``sale`` (a ``StoredSale``); ``request`` is the terminal's."""

    def __init__(self, sale: Any,
                 request: Callable[[str, int, str], dict[str, Any]], lang: str = "zh") -> None:
        self.sale = sale
        self.lang = lang
        self.keypad = Keypad()
        self.keypad.set_mode(KeypadMode.PRICE)
        self.reason: str | None = None
        self.free_text = ""
        self.outcome: dict[str, Any] | None = None  # {"refund_no", "state", "answer"}
        self.requested_fen = 0
        self.notice: Notice | None = None
        self._request = request

    # -- reading -------------------------------------------------------------------------
    @property
    def refundable_fen(self) -> int:
        return max(0, self.sale.total_fen - self.sale.refunded_fen)

    @property
    def can_refund(self) -> bool:
        return self.sale.payment_status in _REFUNDABLE and self.refundable_fen > 0

    def amount_fen(self) -> int | None:
        """The typed amount in fen, or everything still refundable when nothing is typed."""
        if not self.keypad.buffer:
            return self.refundable_fen
        return self.keypad.value_or_none()

    def reason_text(self) -> str:
        """What the gateway is told: the preset's code, the vendor's words, or both."""
        words = self.free_text.strip()
        if self.reason and words:
            return f"{self.reason}: {words}"[:_MAX_REASON]
        return self.reason or words[:_MAX_REASON]

    # -- actions -------------------------------------------------------------------------
    def press(self, key: str) -> bool:
        if self.outcome is not None:
            return False  # sent: a second refund is a new screen, on purpose
        accepted = self.keypad.press(key)
        if not accepted:
            self.notice = Notice("bad_number", (), True)
        return accepted

    def choose_reason(self, reason: str) -> None:
        if reason not in PRESET_REASONS:
            raise ValueError(f"no preset reason {reason!r}")
        self.reason = None if self.reason == reason else reason

    def set_free_text(self, words: str) -> None:
        self.free_text = (words or "")[:_MAX_REASON]

    def submit(self) -> dict[str, Any] | None:
        """Check, then ask the terminal; ``outcome`` holds the request's first state."""
        if self.outcome is not None:
            return self.outcome
        if not self.can_refund:
            self.notice = Notice("refund_not_paid", (), True)
            return None
        amount = self.amount_fen()
        if amount is None or amount <= 0:
            self.notice = Notice("refund_bad_amount", (), True)
            return None
        if amount > self.refundable_fen:
            self.notice = Notice("refund_too_much", (("most", format_fen(self.refundable_fen)),),
                                 True)
            return None
        reason = self.reason_text()
        if not reason:
            self.notice = Notice("refund_need_reason", (), True)
            return None
        try:
            outcome = self._request(self.sale.sale_id, amount, reason)
        except Exception as exc:  # noqa: BLE001 - TerminalError, OSError: shown, not raised
            self.notice = service_notice("refund_failed", exc)
            return None
        self.outcome = dict(outcome)
        self.requested_fen = amount
        self.notice = None
        return self.outcome

    def update(self, sale: Any, request_state: dict[str, Any] | None) -> None:
        """The latest stored sale and request row (the retry loop or a result moved them)."""
        self.sale = sale
        if self.outcome is not None and request_state is not None:
            self.outcome = {**self.outcome, "state": request_state.get("state"),
                            "answer": request_state.get("answer")}

    # -- text ----------------------------------------------------------------------------
    def status_text(self) -> str:
        """One line: where the request is, and what the gateway says was refunded so far."""
        from .strings import text

        if self.outcome is None:
            return ""
        state = str(self.outcome.get("state") or "queued")
        line = text(f"refund_state_{state}", self.lang,
                    amount=format_fen(self.requested_fen))
        if self.sale.refunded_fen:
            line += "  ·  " + text("refund_refunded", self.lang,
                                   amount=format_fen(self.sale.refunded_fen))
        return line

    def notice_text(self) -> str:
        return self.notice.render(self.lang) if self.notice else ""
