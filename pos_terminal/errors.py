"""The terminal's refusals, apart from the terminal so that every module may raise them."""

from __future__ import annotations

__all__ = ["TerminalError", "UnsentSales"]


class TerminalError(RuntimeError):
    """An operation the terminal refuses; the message is fit to show the vendor."""


class UnsentSales(TerminalError):
    """Closing the day while sales are still waiting in the outbox."""

    def __init__(self, count: int) -> None:
        super().__init__(f"{count} sale(s) of today are not uploaded yet: keep the terminal "
                         "online until they are sent, or close anyway")
        self.count = count
