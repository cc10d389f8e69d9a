"""Money as integer fen (minor units) and the one rounding rule for weighed goods."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

__all__ = ["UNIT_GRAMS", "line_amount_fen", "format_fen", "parse_yuan"]

#: Grams per pricing unit. "piece" lines are priced per item and carry a quantity instead.
UNIT_GRAMS: dict[str, int] = {"kg": 1000, "500g": 500, "jin": 500, "g": 1}


def line_amount_fen(unit: str, unit_price_fen: int, *, weight_g: int | None = None,
                    quantity: int | None = None) -> int:
    """Amount of one cart line, rounded half-up to the fen.

    Weighed units need ``weight_g``; ``piece`` needs ``quantity``. Every party (terminal,
    gateway, ledger contract) recomputes line amounts with this function, so the rule
    lives in exactly one place.
    """
    if unit_price_fen < 0:
        raise ValueError("unit_price_fen must be >= 0")
    if unit == "piece":
        if quantity is None or quantity <= 0:
            raise ValueError("a 'piece' line needs a positive quantity")
        return unit_price_fen * quantity
    if unit not in UNIT_GRAMS:
        raise ValueError(f"unknown unit {unit!r}; expected one of piece, {', '.join(UNIT_GRAMS)}")
    if weight_g is None or weight_g <= 0:
        raise ValueError(f"a '{unit}' line needs a positive weight_g")
    exact = Decimal(unit_price_fen) * Decimal(weight_g) / Decimal(UNIT_GRAMS[unit])
    return int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def format_fen(amount_fen: int, symbol: str = "¥") -> str:
    """``1234`` -> ``'¥12.34'``."""
    sign = "-" if amount_fen < 0 else ""
    whole, cents = divmod(abs(amount_fen), 100)
    return f"{sign}{symbol}{whole}.{cents:02d}"


def parse_yuan(text: str) -> int:
    """``'12.3'`` -> ``1230`` fen. Raises ValueError for more than two decimals or junk."""
    value = Decimal(text.strip())
    if value != value.quantize(Decimal("0.01")):
        raise ValueError(f"{text!r} has more than two decimal places")
    return int(value * 100)
