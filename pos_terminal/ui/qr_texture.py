"""The QR as a texture with one texel per module, scaled up with nearest-neighbour filtering.

A phone camera reads a QR by its module edges; a blurred (linearly filtered) QR on a cheap
display fails at an angle. Drawing the module matrix itself, magnified with ``nearest``,
keeps every edge sharp at any size, and needs no PNG decode on the charge path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..emv_qr import EMV_MAX_QR_VERSION
from ..qr_image import MAX_VERSION, qr_matrix

if TYPE_CHECKING:  # Kivy is imported only where a window exists
    from kivy.graphics.texture import Texture

__all__ = ["qr_pixels", "qr_texture", "texture_from_pixels"]

#: RGBA texels: four bytes each keeps every row 4-byte aligned for GL, whatever the side.
_DARK, _LIGHT = b"\x00\x00\x00\xff", b"\xff\xff\xff\xff"


def qr_pixels(data: str) -> tuple[int, bytes]:
    """``(side, rgba)``: one opaque black or white texel per module, rows bottom-up for GL.

    The matrix from ``qr_matrix`` already carries the 4-module quiet zone. An EMVCo payload
    (``000201...``) may use the larger version the EMV option allows.
    """
    emv = data.startswith("000201")
    _, matrix = qr_matrix(data, EMV_MAX_QR_VERSION if emv else MAX_VERSION)
    rows = [b"".join(_DARK if module else _LIGHT for module in row) for row in matrix]
    return len(matrix), b"".join(reversed(rows))


def qr_texture(data: str) -> Texture:
    """A Kivy texture of the QR; needs a running Kivy window (a GL context)."""
    return texture_from_pixels(*qr_pixels(data))


def texture_from_pixels(side: int, pixels: bytes) -> Texture:
    """Upload ``qr_pixels`` output; main (GL) thread only.

    Computing the pixels on a reader thread was tried and measured slower: that thread
    loses the GIL to the frame loop at every wake-up, so the QR arrived later, not sooner.
    """
    from kivy.graphics.texture import Texture

    texture = Texture.create(size=(side, side), colorfmt="rgba")
    texture.mag_filter = "nearest"
    texture.min_filter = "nearest"
    texture.blit_buffer(pixels, colorfmt="rgba", bufferfmt="ubyte")
    return texture
