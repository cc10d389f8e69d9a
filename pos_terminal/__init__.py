"""pos_terminal: the vendor's terminal — cart, QR issuing, outbox and MQTT uplink.

The services here run without a window (``tracepay terminal --headless``); the Kivy screens
in ``pos_terminal.ui`` sit on top of them and only call this public surface.
"""

from .cart import Cart, CartError, CartLine
from .catalogue import DEFAULT_PRODUCTS, Product, load_catalogue, save_catalogue
from .terminal import ChargedSale, Terminal, TerminalError, UnsentSales, ZReport

__all__ = [
    "Cart", "CartError", "CartLine", "DEFAULT_PRODUCTS", "Product", "load_catalogue",
    "save_catalogue", "ChargedSale", "Terminal", "TerminalError", "UnsentSales", "ZReport",
]
