"""Environment variables the terminal's windows read: named once, used by app and harness.

Kept free of Kivy imports so a test process can name them without opening a window.
"""

from __future__ import annotations

__all__ = ["CONTROL_ENV", "CONTROL_KEY_ENV", "DISPLAY_CONTROL_ENV", "LANG_ENV"]

#: Unix socket where the vendor window's ``UIControl`` listens (tests and benchmarks only).
CONTROL_ENV = "TRACEPAY_UI_CONTROL"
#: Hex authkey for both windows' control sockets.
CONTROL_KEY_ENV = "TRACEPAY_UI_CONTROL_KEY"
#: Control socket for the customer display process; passed on to it as its CONTROL_ENV.
DISPLAY_CONTROL_ENV = "TRACEPAY_DISPLAY_UI_CONTROL"
#: First language of the screens when the caller does not say (zh or en).
LANG_ENV = "TRACEPAY_UI_LANG"
