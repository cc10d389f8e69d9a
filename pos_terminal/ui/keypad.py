"""The numeric keypad's entry buffer: what the vendor has typed and what it means.

The same ten keys enter a weight (whole grams), a quantity (whole pieces) or a unit price
(yuan with up to two decimals). The buffer refuses keys that could only make an invalid
number, so a wet thumb cannot type ``1..5`` or a 9-digit weight.
"""

from __future__ import annotations

from dataclasses import dataclass

from market_protocol import parse_yuan

__all__ = ["KeypadMode", "Keypad", "MAX_WEIGHT_G", "MAX_QUANTITY", "MAX_PRICE_FEN"]

MAX_WEIGHT_G = 1_000_000
MAX_QUANTITY = 9_999
MAX_PRICE_FEN = 10_000_000


class KeypadMode:
    WEIGHT = "weight"
    QUANTITY = "quantity"
    PRICE = "price"
    ALL = (WEIGHT, QUANTITY, PRICE)


@dataclass
class Keypad:
    """An entry buffer; ``press`` returns False for a key that was refused."""

    mode: str = KeypadMode.WEIGHT
    buffer: str = ""

    def set_mode(self, mode: str) -> None:
        if mode not in KeypadMode.ALL:
            raise ValueError(f"unknown keypad mode {mode!r}; expected one of {KeypadMode.ALL}")
        if mode != self.mode:
            self.mode = mode
            self.buffer = ""

    def press(self, key: str) -> bool:
        """Apply one key: ``0``-``9``, ``.``, ``00``, ``back`` or ``clear``."""
        if key == "clear":
            self.buffer = ""
            return True
        if key == "back":
            self.buffer = self.buffer[:-1]
            return True
        candidate = self.buffer + key
        if key == "." and self.mode != KeypadMode.PRICE:
            return False
        if key not in {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9", ".", "00"}:
            raise ValueError(f"unknown keypad key {key!r}")
        if not self._acceptable(candidate):
            return False
        self.buffer = candidate
        return True

    def _acceptable(self, candidate: str) -> bool:
        if candidate.count(".") > 1:
            return False
        whole, _, decimals = candidate.partition(".")
        if len(decimals) > 2 or (whole.startswith("0") and len(whole) > 1):
            return False
        return self.value_or_none(candidate) is not None or candidate.endswith(".") or \
            candidate in {"0", "0.", "0.0", "0.00"}

    def value_or_none(self, candidate: str | None = None) -> int | None:
        """The buffer as grams, pieces or fen; None when empty, zero or out of range."""
        raw = self.buffer if candidate is None else candidate
        if not raw or raw.endswith("."):
            return None
        if self.mode == KeypadMode.PRICE:
            value, limit = parse_yuan(raw), MAX_PRICE_FEN
        else:
            value = int(raw)
            limit = MAX_WEIGHT_G if self.mode == KeypadMode.WEIGHT else MAX_QUANTITY
        return value if 0 < value <= limit else None

    def take(self) -> int | None:
        """Consume the entry: its value (or None when there was none) and an empty buffer."""
        value = self.value_or_none()
        self.buffer = ""
        return value
