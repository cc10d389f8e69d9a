"""Manual entry: the vendor types the weight when no scale is attached or it is broken.

Accepted: ``"850"`` or ``"850g"`` (grams), ``"1.25kg"`` or ``"1.25"`` with a decimal point
(kilograms), ``"2jin"`` / ``"2斤"`` (500 g each). Integers only leave this module.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from .base import Reading, ScaleError

__all__ = ["ManualScale", "parse_weight_text"]

_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(g|kg|jin|斤|公斤|克)?\s*$", re.IGNORECASE)
_GRAMS = {"g": 1, "克": 1, "kg": 1000, "公斤": 1000, "jin": 500, "斤": 500}


def parse_weight_text(text: str) -> int:
    """Grams from what the vendor typed; ValueError with the accepted forms otherwise."""
    match = _PATTERN.match(text or "")
    if not match:
        raise ValueError(f"{text!r} is not a weight: type e.g. 850, 850g, 1.25kg or 2jin")
    number, unit = match.group(1), (match.group(2) or "").lower()
    if not unit:
        unit = "kg" if "." in number else "g"
    try:
        grams = Decimal(number) * _GRAMS[unit]
    except InvalidOperation as exc:  # pragma: no cover - the pattern admits only numbers
        raise ValueError(f"{text!r} is not a number") from exc
    if grams != grams.to_integral_value():
        raise ValueError(f"{text!r} is finer than one gram")
    return int(grams)


class ManualScale:
    """A 'scale' whose reading is the last weight typed; always stable, no zero or tare."""

    def __init__(self) -> None:
        self._weight_g: int | None = None

    def enter(self, text: str) -> int:
        self._weight_g = parse_weight_text(text)
        return self._weight_g

    def read(self) -> Reading:
        if self._weight_g is None:
            raise ScaleError("type the weight first", code="scale_type_first")
        return Reading(self._weight_g)

    def zero(self) -> None:
        self._weight_g = None

    def tare(self) -> None:
        raise ScaleError("a typed weight has no tare: type the net weight",
                         code="scale_typed_no_tare")

    def clear_tare(self) -> None:
        pass

    def close(self) -> None:
        pass
