"""Errors from the services, said in the screen's language.

Scales raise ``ScaleError`` with a ``code`` naming their message; the cart and terminal
raise plain errors whose English text is meant for logs. The screens turn both into a
``Notice`` (a strings-table key and values), so a language switch re-renders them too. An
error this module does not know keeps its English detail inside a translated frame.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from market_protocol import format_fen

from .strings import STRINGS, text

__all__ = ["Notice", "scale_notice", "service_notice", "clock_notice"]


@dataclass(frozen=True, slots=True)
class Notice:
    """A one-line message for the vendor, kept as a key so a language switch re-renders it."""

    key: str
    values: tuple[tuple[str, object], ...] = ()
    error: bool = False

    def render(self, lang: str) -> str:
        return text(self.key, lang, **dict(self.values))

_PLACEHOLDER = re.compile(r"\{(\w+)\}")

#: English service messages (pos_terminal.cart / .terminal / .refunds / .barcodes) -> key.
_KNOWN: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"total is too large"), "err_total_too_large"),
    (re.compile(r"a sale holds at most (?P<count>\d+) lines"), "err_too_many_lines"),
    (re.compile(r"must be (?P<low>\d+)\.\.(?P<high>\d+), not"), "err_out_of_range"),
    (re.compile(r"sold by weight"), "need_weight"),
    (re.compile(r"the cart is empty"), "nothing_to_charge"),
    (re.compile(r"this sale is paid: request a refund"), "err_void_paid"),
    (re.compile(r"at most (?P<fen>\d+) fen of this sale"), "err_refund_too_much"),
    (re.compile(r"only a paid sale can be refunded"), "refund_not_paid"),
    (re.compile(r"give a reason for the refund"), "refund_need_reason"),
    (re.compile(r"is not 13 digits"), "barcode_not_ean13"),
    (re.compile(r"check digit \d is wrong"), "barcode_check_digit"),
    (re.compile(r"label carries a zero weight"), "barcode_zero_weight"),
    (re.compile(r"prefix (?P<prefix>\d+) is in-store but not configured"),
     "barcode_prefix_unset"),
    (re.compile(r"clock is (?P<seconds>\d+) s \w+"), "clock_refuse"),
)


def clock_notice(status: object) -> Notice | None:
    """The standing warning of a terminal clock that is off from the gateway's."""
    state = getattr(status, "state", "ok")
    offset = getattr(status, "offset_s", None)
    if state not in ("warn", "refuse") or offset is None:
        return None
    return Notice(f"clock_{state}", (("seconds", f"{abs(offset):.0f}"),), state == "refuse")


def _fits(key: str, values: dict[str, object]) -> bool:
    wanted = {name for table in STRINGS.get(key, {}).values()
              for name in _PLACEHOLDER.findall(table)}
    return key in STRINGS and wanted == set(values)


def scale_notice(exc: BaseException) -> Notice:
    """A scale's refusal in the strings table's words, detail kept for a raw fault."""
    code = getattr(exc, "code", None)
    values = dict(getattr(exc, "values", None) or {})
    if isinstance(code, str) and code.startswith("scale_") and _fits(code, values):
        return Notice(code, tuple(sorted(values.items())), True)
    return Notice("scale_refused", (("reason", str(exc)),), True)


def service_notice(frame_key: str, exc: BaseException) -> Notice:
    """``frame_key`` (e.g. ``charge_failed``) with the reason, or the known error's own key."""
    message = str(exc)
    for pattern, key in _KNOWN:
        match = pattern.search(message)
        if match:
            values: dict[str, object] = dict(match.groupdict())
            if "fen" in values:
                values = {"amount": format_fen(int(str(values.pop("fen"))))}
            return Notice(key, tuple(sorted(values.items())), True)
    return Notice(frame_key, (("reason", message),), True)
