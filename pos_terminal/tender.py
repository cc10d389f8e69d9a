"""Settling a sale at the counter: 抹零 rounding, cash, mixed cash + QR, and change due.

Pure arithmetic in fen, no I/O, so the keypad and the tests can try any amounts. A stall
rounds totals down (never up: the shopper is never asked for more than the goods cost) to
the jiao (10 fen) or the yuan (100 fen), or not at all (``rounding`` in stall.json).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["CASH_CHANNEL", "ROUNDING_STEPS", "Tender", "TenderError", "round_down", "settle"]

#: The payment channel name of cash, on the terminal, at the gateway and in trades.
CASH_CHANNEL = "cash"
#: Rounding rule -> the step totals are rounded down to.
ROUNDING_STEPS = {"none": 1, "jiao": 10, "yuan": 100}


class TenderError(ValueError):
    """Money the counter cannot take as given; the message is fit for the vendor."""


@dataclass(frozen=True)
class Tender:
    lines_fen: int       # what the goods add up to
    rounding_fen: int    # 抹零, taken off
    total_fen: int       # what the shopper owes
    cash_fen: int        # paid in cash
    received_fen: int | None  # notes handed over (None: exact or not counted)

    @property
    def qr_fen(self) -> int:
        """Left for the QR code to take (0 for a cash sale)."""
        return self.total_fen - self.cash_fen

    @property
    def change_fen(self) -> int:
        return 0 if self.received_fen is None else self.received_fen - self.cash_fen

    @property
    def kind(self) -> str:
        """``cash``, ``mixed`` or ``qr``."""
        if self.cash_fen == self.total_fen:
            return "cash"
        return "mixed" if self.cash_fen else "qr"

    def record(self) -> dict[str, Any] | None:
        """The sale record's ``tender`` field; None for a plain QR sale without rounding."""
        if not self.cash_fen and not self.rounding_fen:
            return None
        return {"cash_fen": self.cash_fen, "rounding_fen": self.rounding_fen,
                "received_fen": self.received_fen}


def round_down(lines_fen: int, rule: str) -> int:
    """The rounding (抹零) taken off ``lines_fen`` under ``rule``; never the whole amount."""
    if rule not in ROUNDING_STEPS:
        raise TenderError(f"rounding must be one of {sorted(ROUNDING_STEPS)}, not {rule!r}")
    rounding = lines_fen % ROUNDING_STEPS[rule]
    return 0 if rounding == lines_fen else rounding  # 0.80 is not rounded to nothing


def _fen(name: str, value: int | None) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                              or value < 0):
        raise TenderError(f"{name} must be a whole number of fen >= 0, not {value!r}")
    return value


def settle(lines_fen: int, *, rounding: str = "none", cash_fen: int | None = None,
           received_fen: int | None = None, all_cash: bool = False) -> Tender:
    """How a sale of ``lines_fen`` is paid.

    ``all_cash``: the shopper pays everything in cash (``received_fen`` handed over, which
    must cover it). Otherwise ``cash_fen`` (0 by default) is paid in cash and the QR takes
    the rest; ``received_fen`` may then be more than ``cash_fen`` (change is given).
    """
    _fen("the amount", lines_fen)
    _fen("cash", cash_fen)
    _fen("the money received", received_fen)
    if lines_fen < 1:
        raise TenderError("nothing to pay")
    taken = round_down(lines_fen, rounding)
    total = lines_fen - taken
    cash = total if all_cash else (cash_fen or 0)
    if cash > total:
        raise TenderError(f"cash {cash / 100:.2f} is more than the total {total / 100:.2f}: "
                          "enter what was received instead")
    if received_fen is not None and received_fen < cash:
        raise TenderError(f"received {received_fen / 100:.2f} is less than the cash due "
                          f"{cash / 100:.2f}")
    if received_fen is not None and not cash:
        raise TenderError("money received but no cash part: choose cash or mixed")
    return Tender(lines_fen, taken, total, cash, received_fen)
