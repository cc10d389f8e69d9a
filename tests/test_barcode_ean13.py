"""EAN-13 check digits and price/weight-embedded in-store codes (prefixes 20-29)."""

from __future__ import annotations

import pytest

from pos_terminal.barcodes import (
    BarcodeError,
    EmbeddedBarcode,
    EmbeddedLayout,
    ProductBarcode,
    ean13_check_digit,
    parse_ean13,
)


@pytest.mark.parametrize("code", [
    "4006381333931",  # a widely printed example GTIN
    "6901234567892",  # a Chinese (690-699) GTIN
    "9780306406157",  # ISBN-13
])
def test_known_check_digits(code):
    assert ean13_check_digit(code[:12]) == int(code[12])
    assert parse_ean13(code) == ProductBarcode(code)


def with_check(first12: str) -> str:
    # Independent of the module: weights 1,3 from the left, written out long-hand.
    odd = sum(int(d) for d in first12[0::2])
    even = sum(int(d) for d in first12[1::2])
    return first12 + str((10 - (odd + 3 * even) % 10) % 10)


def test_price_embedded():
    code = with_check("210012301250")  # prefix 21, item 00123, 12.50 yuan
    assert parse_ean13(code) == EmbeddedBarcode(code, 21, "00123", price_fen=1250, weight_g=None)


def test_weight_embedded():
    code = with_check("270045601234")  # prefix 27, item 00456, 1234 g
    assert parse_ean13(code) == EmbeddedBarcode(code, 27, "00456", price_fen=None, weight_g=1234)


def test_custom_layout():
    layout = EmbeddedLayout(price_prefixes=frozenset({29}), weight_prefixes=frozenset({20}))
    assert parse_ean13(with_check("200000100500"), layout).weight_g == 500
    assert parse_ean13(with_check("290000100500"), layout).price_fen == 500
    with pytest.raises(BarcodeError, match="prefix 25 is in-store but not configured"):
        parse_ean13(with_check("250000100500"), layout)


@pytest.mark.parametrize("code, message", [
    ("4006381333932", "check digit 2 is wrong"),
    ("400638133393", "not 13 digits"),
    ("40063813339A1", "not 13 digits"),
    ("", "not 13 digits"),
])
def test_bad_scans(code, message):
    with pytest.raises(BarcodeError, match=message):
        parse_ean13(code)


def test_zero_weight_label_is_refused():
    with pytest.raises(BarcodeError, match="zero weight"):
        parse_ean13(with_check("270045600000"))
