"""Which quick key a scale label's five-digit item code (PLU) means.

Label printers carry a PLU, not our product codes, so the mapping is data the vendor or the
market sets in ``<data-dir>/plu.json`` (``{"00003": "tomato", ...}``). Without that file
the quick keys are numbered in catalogue order (first key 00001), and a product whose code
is itself the five digits always matches.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from ..catalogue import Product

__all__ = ["PLU_FILE", "load_plu_table", "product_for_plu"]

PLU_FILE = "plu.json"
_PLU = re.compile(r"^\d{5}$")


def load_plu_table(data_dir: str | os.PathLike[str], products: list[Product]) -> dict[str, str]:
    """PLU -> product code; ValueError when ``plu.json`` is malformed (say so at start-up)."""
    path = Path(data_dir) / PLU_FILE
    if not path.exists():
        return {f"{index:05d}": product.code for index, product in enumerate(products, 1)}
    try:
        table = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path} is not readable JSON: {exc}") from exc
    if not isinstance(table, dict) or not all(
            isinstance(k, str) and _PLU.match(k) and isinstance(v, str) for k, v in table.items()):
        raise ValueError(f"{path} must map five-digit PLUs to product codes")
    return dict(table)


def product_for_plu(plu: str, table: dict[str, str], products: list[Product]) -> Product | None:
    by_code = {product.code: product for product in products}
    return by_code.get(table.get(plu, "")) or by_code.get(plu)
