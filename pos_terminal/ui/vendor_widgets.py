"""The vendor screen's widgets: product keys (with long press), cart and sale rows, screens.

The .kv files lay them out; ``VendorApp`` fills them. Colours are picked for reading in
direct sun: black text on light keys, white on dark ones.
"""

from __future__ import annotations

from typing import Any

from kivy.app import App
from kivy.clock import Clock
from kivy.properties import BooleanProperty, ColorProperty, NumericProperty, StringProperty
from kivy.uix.behaviors import ButtonBehavior
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.button import Button
from kivy.uix.screenmanager import Screen

__all__ = ["QuickKey", "CartRow", "SaleRow", "RingUpScreen", "EnrolScreen", "RefundScreen",
           "SalesScreen", "ZReportScreen", "rgba", "text_colour"]


def rgba(hex_colour: str) -> tuple[float, float, float, float]:
    value = hex_colour.lstrip("#")
    return (int(value[0:2], 16) / 255, int(value[2:4], 16) / 255, int(value[4:6], 16) / 255, 1)


def text_colour(background: tuple[float, ...]) -> tuple[float, float, float, float]:
    """Black on light keys, white on dark ones: readable in direct sun either way."""
    red, green, blue = background[:3]
    return (0, 0, 0, 1) if 0.299 * red + 0.587 * green + 0.114 * blue > 0.5 else (1, 1, 1, 1)


class QuickKey(Button):
    """A product key; held for ``LONG_PRESS_S`` it asks to re-price itself instead."""

    LONG_PRESS_S = 0.8
    tap_id = StringProperty()
    code = StringProperty()
    key_colour = ColorProperty((0.5, 0.5, 0.5, 1))
    text_colour = ColorProperty((0, 0, 0, 1))
    long_fired = BooleanProperty(False)

    def on_touch_down(self, touch: Any) -> bool:
        if self.collide_point(*touch.pos) and not self.disabled:
            self.long_fired = False
            Clock.unschedule(self._long_press)
            Clock.schedule_once(self._long_press, self.LONG_PRESS_S)
        return super().on_touch_down(touch)

    def on_touch_up(self, touch: Any) -> bool:
        if touch.grab_current is self:
            Clock.unschedule(self._long_press)
        return super().on_touch_up(touch)

    def _long_press(self, dt: float) -> None:
        if self.state == "down":  # still held
            self.long_fired = True
            App.get_running_app().long_press_product(self.code)


class CartRow(ButtonBehavior, BoxLayout):
    tap_id = StringProperty()
    index = NumericProperty(0)
    name = StringProperty()
    detail = StringProperty()
    amount = StringProperty()
    selected = BooleanProperty(False)


class SaleRow(ButtonBehavior, BoxLayout):
    tap_id = StringProperty()
    seq = NumericProperty(0)
    sale_id = StringProperty()
    summary = StringProperty()
    status = StringProperty()
    status_key = StringProperty()
    status_rgba = ColorProperty((1, 1, 1, 1))
    amount = StringProperty()
    selected = BooleanProperty(False)


class RingUpScreen(Screen):
    pass


class EnrolScreen(Screen):
    pass


class RefundScreen(Screen):
    pass


class SalesScreen(Screen):
    pass


class ZReportScreen(Screen):
    pass
