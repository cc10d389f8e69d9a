"""Scale labels (EAN-13 with an embedded weight or price) as cart lines for the vendor screen.

A price label on a weighed product becomes the weight that price buys at the key's unit
price, so the line (and the trace) still carries grams; its weight is marked as from a label.
"""

from __future__ import annotations

from typing import Any

from market_protocol.money import UNIT_GRAMS

from ..barcodes import BarcodeError, ProductBarcode, parse_ean13
from ..cart import CartError
from .line_text import product_name
from .messages import service_notice
from .plu import product_for_plu

__all__ = ["add_from_label"]


def add_from_label(model: Any, code: str) -> bool:
    """Add the label's line to ``model`` (a ``VendorScreenModel``); False with a notice when
    the label is refused."""
    try:
        parsed = parse_ean13(code)
    except BarcodeError as exc:
        model.notice = service_notice("barcode_bad", exc)
        return False
    if isinstance(parsed, ProductBarcode):
        model.tell("barcode_not_in_store", code=parsed.code, error=True)
        return False
    product = product_for_plu(parsed.item_code, model.plu_table, model.products)
    if product is None:
        model.tell("barcode_unknown_plu", plu=parsed.item_code, error=True)
        return False
    try:
        if parsed.weight_g is not None:
            if not product.weighed:
                model.tell("barcode_weight_on_piece", name=product_name(product, model.lang),
                          error=True)
                return False
            model.cart.add(product, weight_g=parsed.weight_g, weight_entry="label")
        elif not product.weighed:
            model.cart.add(product, quantity=1, unit_price_fen=parsed.price_fen)
        else:  # a price label: parse_ean13 gives it a price and no weight
            assert parsed.price_fen is not None, "an in-store label carries a price or a weight"
            if not product.unit_price_fen:
                model.tell("barcode_no_unit_price", name=product_name(product, model.lang),
                          error=True)
                return False
            grams = round(parsed.price_fen * UNIT_GRAMS[product.unit]
                          / product.unit_price_fen)
            model.cart.add(product, weight_g=max(1, grams), weight_entry="label")
    except CartError as exc:
        model.notice = service_notice("charge_failed", exc)
        return False
    model.selected_line = None
    model.tell("barcode_added", name=product_name(product, model.lang))
    model._cart_changed()
    return True

