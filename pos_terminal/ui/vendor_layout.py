"""How the vendor screen fits its panel: the market's 800x480, 1024x600 and 1280x800 screens.

A mixin of ``VendorApp``. Below about 900x560 dp the screens go compact (smaller bar, gaps and
type, the same 48 dp touch targets), so every key stays on an 800x480 panel; the .kv files
bind to ``compact``, ``bar_height`` and ``gap``.
"""

from __future__ import annotations

from typing import Any

from kivy.core.window import Window
from kivy.metrics import dp
from kivy.properties import BooleanProperty, NumericProperty

__all__ = ["ScreenFit", "COMPACT_BELOW_DP"]

#: (width, height) in dp under which the compact layout is used.
COMPACT_BELOW_DP = (900, 560)


class ScreenFit:
    """Follows the window's size; call ``fit_window`` once the window exists."""

    compact = BooleanProperty(False)
    bar_height = NumericProperty(dp(56))
    gap = NumericProperty(dp(6))

    def fit_window(self) -> None:
        Window.bind(size=self._window_resized)
        self._window_resized(Window, Window.size)

    def _window_resized(self, window: Any, size: tuple[int, int]) -> None:
        width, height = size[0] / dp(1), size[1] / dp(1)
        self.compact = width < COMPACT_BELOW_DP[0] or height < COMPACT_BELOW_DP[1]
        self.bar_height = dp(48) if self.compact else dp(56)
        self.gap = dp(4) if self.compact else dp(6)
