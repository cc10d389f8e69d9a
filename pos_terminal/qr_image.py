"""Render a QR code as PNG bytes, sharp enough for a phone across a market stall.

Error level M survives a wet or scratched screen protector; the version is capped at 10
so modules stay large on a small customer display. A payload that needs more is refused
loudly rather than rendered as a dense code nobody can scan.
"""

from __future__ import annotations

import io

import qrcode
from PIL import Image
from qrcode.constants import ERROR_CORRECT_M

__all__ = ["MAX_VERSION", "QRTooLargeError", "qr_matrix", "qr_png"]

MAX_VERSION = 10


class QRTooLargeError(ValueError):
    pass


def _build(data: str, max_version: int = MAX_VERSION) -> qrcode.QRCode:
    code = qrcode.QRCode(error_correction=ERROR_CORRECT_M, box_size=8, border=4)
    code.add_data(data)
    code.make(fit=True)
    if code.version > max_version:
        raise QRTooLargeError(f"payload of {len(data)} bytes needs QR version {code.version} "
                              f"> {max_version} at level M")
    return code


def qr_matrix(data: str, max_version: int = MAX_VERSION) -> tuple[int, list[list[bool]]]:
    """``(version, modules)``: for displays that draw the code themselves (Kivy)."""
    code = _build(data, max_version)
    return code.version, code.get_matrix()


def qr_png(data: str, box_size: int = 8, max_version: int = MAX_VERSION) -> bytes:
    """PNG bytes of the QR, black on white, with the standard 4-module quiet zone.

    Drawn as one module per pixel and scaled up with nearest-neighbour: exact module edges,
    and several times faster than drawing each module as a rectangle.
    """
    matrix = _build(data, max_version).get_matrix()
    size = len(matrix)
    pixels = bytes(0 if dark else 255 for row in matrix for dark in row)
    image = Image.frombytes("L", (size, size), pixels)
    image = image.resize((size * box_size, size * box_size), Image.Resampling.NEAREST)
    buffer = io.BytesIO()
    image.convert("1").save(buffer, format="PNG")
    return buffer.getvalue()
