"""EAN-13 barcodes, including the in-store codes that carry a price or a weight.

GS1 reserves prefixes 20-29 for restricted circulation: a market's label printer (or a
wholesaler's) encodes ``PP IIIII VVVVV C`` — two prefix digits, a five-digit item code, a
five-digit value and the EAN check digit. What the value means depends on the prefix and is
set per market, so the layout is data (``EmbeddedLayout``); the default reads 20-24 as a
price in fen and 25-29 as a weight in grams.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["BarcodeError", "ean13_check_digit", "EmbeddedLayout", "EmbeddedBarcode",
           "ProductBarcode", "parse_ean13", "DEFAULT_LAYOUT"]


class BarcodeError(ValueError):
    """A scan that is not a valid EAN-13; the message says what is wrong."""


def ean13_check_digit(first12: str) -> int:
    """Weights 1,3,1,3,... from the left over 12 digits; the check makes the sum a multiple of 10."""
    if len(first12) != 12 or not first12.isdigit():
        raise BarcodeError("need exactly 12 digits to compute an EAN-13 check digit")
    total = sum(int(digit) * (3 if index % 2 else 1) for index, digit in enumerate(first12))
    return (10 - total % 10) % 10


@dataclass(frozen=True)
class EmbeddedLayout:
    """Which prefixes carry a price (fen) and which a weight (grams)."""

    price_prefixes: frozenset[int] = field(default_factory=lambda: frozenset(range(20, 25)))
    weight_prefixes: frozenset[int] = field(default_factory=lambda: frozenset(range(25, 30)))


DEFAULT_LAYOUT = EmbeddedLayout()


@dataclass(frozen=True, slots=True)
class EmbeddedBarcode:
    code: str
    prefix: int
    item_code: str
    price_fen: int | None
    weight_g: int | None


@dataclass(frozen=True, slots=True)
class ProductBarcode:
    """An ordinary GTIN-13 (packaged goods): looked up, not decoded."""

    code: str


def parse_ean13(code: str, layout: EmbeddedLayout = DEFAULT_LAYOUT
                ) -> EmbeddedBarcode | ProductBarcode:
    """Validate the check digit and decode an in-store code; BarcodeError otherwise."""
    code = (code or "").strip()
    if len(code) != 13 or not code.isdigit():
        raise BarcodeError(f"{code!r} is not 13 digits")
    expected = ean13_check_digit(code[:12])
    if int(code[12]) != expected:
        raise BarcodeError(f"check digit {code[12]} is wrong (expected {expected}): scan again")
    prefix = int(code[:2])
    if not 20 <= prefix <= 29:
        return ProductBarcode(code)
    item, value = code[2:7], int(code[7:12])
    if prefix in layout.price_prefixes:
        return EmbeddedBarcode(code, prefix, item, price_fen=value, weight_g=None)
    if prefix in layout.weight_prefixes:
        if value == 0:
            raise BarcodeError("the label carries a zero weight")
        return EmbeddedBarcode(code, prefix, item, price_fen=None, weight_g=value)
    raise BarcodeError(f"prefix {prefix} is in-store but not configured for price or weight")
