"""The cart being rung up: pure data and arithmetic, no I/O, so the screens can test it alone.

Every line amount comes from ``market_protocol.line_amount_fen``: the gateway and the ledger
recompute it with the same rule, so a cart total can never disagree with theirs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, overload

from market_protocol import line_amount_fen

from .catalogue import Product

__all__ = ["Cart", "CartLine", "CartError", "MAX_LINES", "MAX_WEIGHT_G", "MAX_QUANTITY",
           "WEIGHT_ENTRIES", "free_amount_product"]

#: Where a weighed line's grams came from: the scale, the keypad (typed by hand: marked on
#: the sale record and the receipt) or a scale label.
WEIGHT_ENTRIES = ("scale", "manual", "label")
FREE_AMOUNT_CODE = "free-amount"

#: Limits of the sale schema (``market_protocol.messages``); checked here so the vendor
#: hears about them at the keypad, not when the sale is refused later.
MAX_LINES = 200
MAX_WEIGHT_G = 10_000_000
MAX_QUANTITY = 100_000
MAX_TOTAL_FEN = 2**32 - 1

_UNSET: Any = object()


class CartError(ValueError):
    """A line the cart refuses; the message is fit to show the vendor."""


@dataclass(frozen=True, slots=True)
class CartLine:
    product: Product
    unit_price_fen: int
    weight_g: int | None
    quantity: int | None
    amount_fen: int
    weight_entry: str | None = None

    def to_record(self) -> dict[str, Any]:
        """The line as it appears in a ``tracepay.sale/1`` record (``weight_entry`` only
        when known, so records stay as older readers expect)."""
        record = {
            "product_code": self.product.code,
            "name": self.product.name,
            "unit": self.product.unit,
            "unit_price_fen": self.unit_price_fen,
            "weight_g": self.weight_g,
            "quantity": self.quantity,
            "amount_fen": self.amount_fen,
            "lot": self.product.lot,
            "origin": self.product.origin,
        }
        if self.weight_entry is not None and self.weight_g is not None:
            record["weight_entry"] = self.weight_entry
        return record


def free_amount_product(amount_fen: int) -> Product:
    """The line for an amount typed with no product key (the 金额 key): one piece at that
    price, so the gateway's line arithmetic holds as for any other line."""
    return Product(code=FREE_AMOUNT_CODE, name="Amount", name_zh="金额", unit="piece",
                   unit_price_fen=amount_fen, colour="#9e9e9e")


@overload
def _whole(name: str, value: int, low: int, high: int) -> int: ...
@overload
def _whole(name: str, value: int | None, low: int, high: int) -> int | None: ...
def _whole(name: str, value: int | None, low: int, high: int) -> int | None:
    """``value`` checked to be a whole number in ``low..high``; None stays None."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise CartError(f"{name} must be a whole number, not {value!r}")
    if not low <= value <= high:
        raise CartError(f"{name} must be {low}..{high}, not {value}")
    return value


def make_line(product: Product, *, weight_g: int | None = None, quantity: int | None = None,
              unit_price_fen: int | None = None, weight_entry: str | None = None) -> CartLine:
    """Build a priced line; weighed products need ``weight_g``, pieces a ``quantity``."""
    price = product.unit_price_fen if unit_price_fen is None else unit_price_fen
    price = _whole("unit price", price, 0, MAX_TOTAL_FEN)
    weight_g = _whole("weight", weight_g, 1, MAX_WEIGHT_G)
    quantity = _whole("quantity", quantity, 1, MAX_QUANTITY)
    if product.weighed:
        if weight_g is None:
            raise CartError(f"{product.name} is sold by weight: enter a weight in grams")
        quantity = None
    else:
        if quantity is None:
            quantity = 1
        weight_g = None
    if weight_entry is not None and weight_entry not in WEIGHT_ENTRIES:
        raise CartError(f"weight entry must be one of {WEIGHT_ENTRIES}, not {weight_entry!r}")
    amount = line_amount_fen(product.unit, price, weight_g=weight_g, quantity=quantity)
    return CartLine(product, price, weight_g, quantity, amount,
                    weight_entry if product.weighed else None)


class Cart:
    """An ordered list of lines with a running total."""

    def __init__(self) -> None:
        self._lines: list[CartLine] = []

    @property
    def lines(self) -> tuple[CartLine, ...]:
        return tuple(self._lines)

    @property
    def total_fen(self) -> int:
        return sum(line.amount_fen for line in self._lines)

    def __len__(self) -> int:
        return len(self._lines)

    def __bool__(self) -> bool:
        return bool(self._lines)

    def add(self, product: Product, weight_g: int | None = None, quantity: int | None = None,
            unit_price_fen: int | None = None, weight_entry: str | None = None) -> CartLine:
        if len(self._lines) >= MAX_LINES:
            raise CartError(f"a sale holds at most {MAX_LINES} lines")
        line = make_line(product, weight_g=weight_g, quantity=quantity,
                         unit_price_fen=unit_price_fen, weight_entry=weight_entry)
        self._check_total(self.total_fen + line.amount_fen)
        self._lines.append(line)
        return line

    def update(self, index: int, *, weight_g: int | None = _UNSET,
               quantity: int | None = _UNSET, unit_price_fen: int | None = _UNSET) -> CartLine:
        """Change a line's weight, quantity or price; arguments left out keep their value."""
        old = self._line(index)
        line = make_line(
            old.product,
            weight_g=old.weight_g if weight_g is _UNSET else weight_g,
            quantity=old.quantity if quantity is _UNSET else quantity,
            unit_price_fen=old.unit_price_fen if unit_price_fen is _UNSET else unit_price_fen,
            # a weight typed over the scale's is typed by hand
            weight_entry=old.weight_entry if weight_g is _UNSET else "manual",
        )
        self._check_total(self.total_fen - old.amount_fen + line.amount_fen)
        self._lines[index] = line
        return line

    def remove(self, index: int) -> CartLine:
        self._line(index)
        return self._lines.pop(index)

    def clear(self) -> None:
        self._lines.clear()

    def to_records(self) -> list[dict[str, Any]]:
        return [line.to_record() for line in self._lines]

    def _line(self, index: int) -> CartLine:
        if not isinstance(index, int) or not 0 <= index < len(self._lines):
            raise CartError(f"no cart line {index}; the cart has {len(self._lines)}")
        return self._lines[index]

    @staticmethod
    def _check_total(total: int) -> None:
        if total > MAX_TOTAL_FEN:
            raise CartError("the sale's total is too large for one payment")


