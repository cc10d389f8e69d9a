"""Trace codes: short, unguessable, derived from the sale id so every party agrees."""

from __future__ import annotations

import base64
import hashlib

__all__ = ["trace_code_for_sale"]


def trace_code_for_sale(sale_id: str) -> str:
    """12 base32 characters (60 bits), lower case, printable on a receipt: ``'t4kq...'``."""
    digest = hashlib.sha256(b"tracepay-trace/1|" + sale_id.encode()).digest()
    return base64.b32encode(digest).decode("ascii")[:12].lower()
