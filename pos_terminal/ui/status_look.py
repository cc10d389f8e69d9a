"""How a payment's outcome looks on both screens: a colour and an icon per status.

Paid and failed must be told apart at a glance in sun and by a colour-blind vendor, so each
has its own colour and its own shape (✔ / ✘), not colour alone. The icons are in the CJK
font the screens use; without it plain ASCII marks stand in (Kivy's default font has none).
"""

from __future__ import annotations

__all__ = ["STATUS_COLOURS", "status_icon", "status_colour"]

#: RGBA per status, readable on the dark vendor screen and the white customer display.
STATUS_COLOURS: dict[str, tuple[float, float, float, float]] = {
    "paid": (0.1, 0.7, 0.25, 1), "failed": (0.9, 0.18, 0.12, 1),
    "expired": (0.9, 0.5, 0.0, 1), "cancelled": (0.5, 0.5, 0.5, 1),
    "open": (1.0, 0.76, 0.03, 1), "void": (0.6, 0.6, 0.6, 1),
    "refunded": (0.35, 0.6, 1.0, 1), "partially_refunded": (0.35, 0.6, 1.0, 1),
    "paid_after_void": (0.9, 0.18, 0.12, 1),
}

_ICONS = {"paid": "✔", "failed": "✘", "expired": "✘", "cancelled": "×", "void": "×",
          "open": "…", "refunded": "↺", "partially_refunded": "◐", "paid_after_void": "✘"}
_ASCII = {"paid": "OK", "failed": "X", "expired": "X", "cancelled": "-", "void": "-",
          "open": "...", "refunded": "R", "partially_refunded": "r", "paid_after_void": "!"}


def status_icon(status: str, has_cjk_font: bool = True) -> str:
    return (_ICONS if has_cjk_font else _ASCII).get(status, "")


def status_colour(status: str,
                  default: tuple[float, float, float, float] = (1, 1, 1, 1),
                  ) -> tuple[float, float, float, float]:
    return STATUS_COLOURS.get(status, default)
