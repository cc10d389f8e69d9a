"""Keys into the vendor screen: a keyboard-wedge scanner, a serial scanner, a keyboard.

A mixin of ``VendorApp``. A wedge scanner types its code and ends it with Enter; on the
enrolment screen the same keys type the code; on the refund screen the reason field has
the keyboard. ``scanned`` is where every whole code lands, on the UI thread: a product or
scale label adds a line, a shopper's payment code (付款码) pays the sale on screen.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kivy.clock import Clock
from kivy.core.window import Window

from .enrol_model import EnrolmentModel
from .payer_code_scan import is_payer_code_scan, scan_payer_code
from .scan_input import WedgeBuffer
from .vendor_binding import TerminalBinding

__all__ = ["KeyboardInput"]


class KeyboardInput(TerminalBinding):
    """Keyboard and scanner input; expects the attributes ``VendorApp`` defines."""

    enrol: EnrolmentModel | None
    manager: Any
    wedge: WedgeBuffer

    if TYPE_CHECKING:
        def refresh(self) -> None: ...
        def enrol_press(self, key: str) -> None: ...
        def enrol_submit(self) -> None: ...

    def _on_textinput(self, window: Any, chars: str) -> None:
        if self.enrol is not None and self.manager.current == "enrol":
            for char in chars:
                if char.isprintable() and not char.isspace():
                    self.enrol_press(char)
            return
        if self.manager.current != "refund":  # there the reason field has the keyboard
            self.wedge.feed(chars)

    def _on_key_down(self, window: Any, key: int, scancode: int, codepoint: Any,
                     modifiers: Any) -> bool:
        if key in (13, 271) and self.manager.current != "refund":
            # Enter, keypad Enter: how a wedge scanner ends its code (the refund screen's
            # text field keeps its own Enter)
            if self.enrol is not None and self.manager.current == "enrol":
                self.enrol_submit()
            else:
                for line in self.wedge.enter():
                    self.scanned(line)
            return True
        if key == 8 and self.enrol is not None and self.manager.current == "enrol":
            self.enrol_press("back")
            return True
        return False

    def _type_op(self, request: dict[str, Any]) -> dict[str, Any]:
        """Control op: keys as a keyboard (or a wedge scanner) sends them to the window."""
        for char in str(request["text"]):
            if char in "\r\n":
                Window.dispatch("on_key_down", 13, 36, None, [])
                Window.dispatch("on_key_up", 13, 36)
            else:
                Window.dispatch("on_key_down", ord(char.lower()), 0, char, [])
                Window.dispatch("on_textinput", char)
                Window.dispatch("on_key_up", ord(char.lower()), 0)
        return {"ok": True}

    def scanned(self, line: str) -> None:
        """One whole scan from the serial reader or the wedge, on the UI thread."""
        if self.enrol is not None and self.manager.current == "enrol":
            self.enrol.scanned(line)
            self.enrol_submit()
            return
        if not self.attached:
            return
        if self.manager.current != "ring_up":
            self.manager.current = "ring_up"
        if is_payer_code_scan(self.model, line):
            # The shopper shows their wallet's code instead of scanning the stall's QR.
            scan_payer_code(self.model, self.terminal, line, on_ui=self._on_ui)
        else:
            self.model.scan_barcode(line)
        self.refresh()

    def _on_ui(self, work: Any) -> None:
        def run(_dt: float) -> None:
            work()
            self.refresh()
        Clock.schedule_once(run, 0)
