"""GS1 Digital Link-style URLs for lots: ``https://<host>/01/<GTIN-14>/10/<lot>``.

A printed code that any phone opens and any GS1 resolver understands. Products without a
GTIN (most loose produce) fall back to the bridge's own lot URL.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from .catalogue import gtin14

__all__ = ["lot_url", "parse_lot_path", "LOT_CHARS"]

#: GS1 AI (10) batch/lot: up to 20 characters of GS1's "CSET 82" set (a safe subset here).
LOT_CHARS = re.compile(r"^[A-Za-z0-9_.:-]{1,20}$")


def lot_url(base_url: str, lot: str, gtin: str | None) -> str:
    """The lot's public URL; Digital Link form when the product has a GTIN."""
    base = base_url.rstrip("/")
    if gtin is not None and LOT_CHARS.match(lot):
        return f"{base}/01/{gtin14(gtin)}/10/{quote(lot, safe='')}"
    return f"{base}/v1/lots/{quote(lot, safe='')}"


def parse_lot_path(gtin: str, lot: str) -> tuple[str, str]:
    """Validate the two path parts of a Digital Link; raises ValueError with the reason."""
    if not LOT_CHARS.match(lot):
        raise ValueError("lot must be 1-20 of letters, digits, _ . : -")
    return gtin14(gtin), lot
