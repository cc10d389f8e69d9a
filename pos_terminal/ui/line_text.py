"""How a cart line and a price read on screen, in either language.

Shared by the vendor screen and the customer display so both always describe a line the
same way: ``350 g × ¥1.50/500 g``.
"""

from __future__ import annotations

from market_protocol import format_fen

from ..cart import CartLine
from ..catalogue import Product
from .strings import text, unit_label

__all__ = ["product_name", "price_text", "line_detail", "display_line"]


def product_name(product: Product, lang: str) -> str:
    return product.name_zh if lang == "zh" and product.name_zh else product.name


def price_text(unit_price_fen: int, unit: str, lang: str) -> str:
    """``'¥1.50/500 g'``."""
    return format_fen(unit_price_fen) + unit_label(unit, lang)


def line_detail(line: CartLine, lang: str, mark_typed: bool = True) -> str:
    if line.weight_g is not None:
        amount = f"{line.weight_g} {text('grams', lang)}"
        if mark_typed and line.weight_entry == "manual":  # typed by hand, not weighed: say so
            amount += f" ({text('weight_typed', lang)})"
    else:
        amount = f"{line.quantity} {text('pieces', lang)}"
    return f"{amount} × {price_text(line.unit_price_fen, line.product.unit, lang)}"


def display_line(line: CartLine, lang: str) -> dict[str, object]:
    """A line as the customer display receives it over IPC."""
    return {"name": product_name(line.product, lang), "detail": line_detail(line, lang, mark_typed=False),
            "amount_fen": line.amount_fen}
