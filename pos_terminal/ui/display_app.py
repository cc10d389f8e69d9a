"""The customer display: a second process (Kivy has one window per process).

It connects to the vendor screen's socket, feeds every frame to ``CustomerDisplayModel`` and
draws the state. The QR is drawn from the URL it receives, here, so it needs no network and
no PNG. After a frame with a new state reaches the screen (``on_flip``), it answers
``{"type": "shown", ...}`` with the monotonic time, which the charge benchmark reads.

Run by the vendor screen as ``python -m pos_terminal.ui.display_app --address SOCKET``.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # Kivy is imported once the window is configured
    from kivy.app import App

__all__ = ["main"]

log = logging.getLogger(__name__)

KV_DIR = Path(__file__).with_name("kv")

_RESULT_PHASES = ("paid", "failed", "expired", "cancelled")
_BACKGROUNDS = {"paid": (0.88, 1.0, 0.9, 1), "failed": (1.0, 0.9, 0.88, 1),
                "expired": (1.0, 0.95, 0.85, 1)}


def _build_app(address: str, merchant: str, has_cjk_font: bool = True) -> App:  # noqa: C901 - Kivy classes need the window
    from kivy.app import App
    from kivy.clock import Clock
    from kivy.core.window import Window
    from kivy.lang import Builder
    from kivy.properties import ColorProperty, NumericProperty, ObjectProperty, StringProperty
    from kivy.uix.boxlayout import BoxLayout
    from kivy.uix.widget import Widget

    from market_protocol import format_fen

    from .display_link import connect_display, decode, encode
    from .display_model import CustomerDisplayModel, DisplayMessageError, DisplayState
    from .qr_texture import qr_texture
    from .status_look import status_colour, status_icon
    from .strings import text
    from .ui_control import UIControl

    class QRView(Widget):
        texture = ObjectProperty(None, allownone=True)
        side = NumericProperty(0)

        def on_texture(self, *args: Any) -> None:
            self._fit()

        def on_size(self, *args: Any) -> None:
            self._fit()

        def _fit(self) -> None:
            modules = self.texture.width if self.texture else 0
            scale = int(min(self.width, self.height) // modules) if modules else 0
            self.side = modules * scale

    class DisplayLineRow(BoxLayout):
        name = StringProperty()
        detail = StringProperty()
        amount = StringProperty()

    class DisplayRoot(BoxLayout):
        phase = StringProperty("idle")
        merchant = StringProperty()
        headline = StringProperty()
        total_text = StringProperty()
        detail_text = StringProperty()
        status_text = StringProperty()
        status_colour = ColorProperty((0, 0, 0, 1))
        background = ColorProperty((1, 1, 1, 1))
        qr_texture = ObjectProperty(None, allownone=True)

    class CustomerDisplayApp(App):
        def build(self) -> DisplayRoot:
            Builder.load_file(str(KV_DIR / "customer_display.kv"))
            self.title = "tracepay customer display"
            self.model = CustomerDisplayModel()
            self.root_widget = DisplayRoot(merchant=merchant)
            self._drawn: DisplayState | None = None
            self._qr_for: str | None = None
            self._announce: dict[str, Any] | None = None
            self._timing: dict[str, Any] = {}
            self.conn = connect_display(address)
            self._send_lock = threading.Lock()
            Window.bind(on_flip=self._flipped)
            threading.Thread(target=self._read, name="display-read", daemon=True).start()
            Clock.schedule_interval(self._tick, 0.25)
            self.draw()
            return self.root_widget

        def on_start(self) -> None:
            self._control = UIControl.from_environment(self.snapshot)

        def snapshot(self) -> dict[str, Any]:
            state = self.model.state
            texture = self.root_widget.qr_texture
            image = self.root_widget.ids.qr
            return {"phase": state.phase, "sale_id": state.sale_id, "qr_url": state.qr_url,
                    "total_fen": state.total_fen, "lang": state.lang,
                    "lines": [line.name for line in state.lines],
                    "headline": self.root_widget.headline,
                    "status_text": self.root_widget.status_text,
                    "status_colour": list(self.root_widget.status_colour),
                    "qr_modules": texture.size[0] if texture else None,
                    "qr_filter": texture.mag_filter if texture else None,
                    "qr_drawn_px": image.side if texture else None,
                    "qr_rect": [*image.to_window(int(image.center_x - image.side / 2),
                                                 int(image.center_y - image.side / 2)),
                                image.side] if texture else None,
                    "window": list(Window.size),
                    "qr_px_per_module": image.side // texture.width if texture else None}

        def _read(self) -> None:
            while True:
                try:
                    frame = self.conn.recv_bytes()
                except (EOFError, OSError):
                    log.info("the vendor screen closed the display link; closing")
                    Clock.schedule_once(lambda dt: self.stop(), 0)
                    return
                Clock.schedule_once(lambda dt, f=frame: self._apply(f), 0)

        def _apply(self, frame: bytes) -> None:
            try:
                message = decode(frame)
                self.model.apply(message, int(time.time() * 1000))
            except (ValueError, DisplayMessageError) as exc:
                log.warning("ignoring a display message: %s", exc)
                return
            self._timing = {"sent_ns": message.get("sent_ns"), "applied_ns": time.monotonic_ns()}
            self.draw()
            self._timing["drawn_ns"] = time.monotonic_ns()

        def _tick(self, dt: float) -> None:
            self.model.tick(int(time.time() * 1000))
            self.draw()

        def draw(self) -> None:
            state, root = self.model.state, self.root_widget
            lang = state.lang
            now_ms = int(time.time() * 1000)
            if state.qr_url and state.qr_url != self._qr_for:
                started = time.monotonic_ns()
                try:
                    root.qr_texture = qr_texture(state.qr_url)
                except ValueError as exc:  # too large for a scannable QR: say so, not crash
                    log.error("cannot draw the QR: %s", exc)
                    root.qr_texture = None
                self._qr_for = state.qr_url
                self._timing["qr_ms"] = (time.monotonic_ns() - started) / 1e6
            root.total_text = format_fen(state.total_fen) if state.phase != "idle" else ""
            root.background = _BACKGROUNDS.get(state.phase, (1, 1, 1, 1))
            root.status_text = (f"{status_icon(state.phase, has_cjk_font)} "
                                f"{text(state.phase, lang)}"
                                if state.phase in _RESULT_PHASES else "")
            root.status_colour = status_colour(state.phase, (0, 0, 0, 1))
            if state.phase == "qr":
                root.headline = text("scan_to_pay", lang)
                parts = [text("expires_in", lang, seconds=state.seconds_left(now_ms))]
                if state.trace_code:
                    parts.append(text("trace_code", lang, code=state.trace_code))
                root.detail_text = "\n".join(parts)
            elif state.phase == "paid" and state.trace_code:
                root.headline = text("total", lang)
                root.detail_text = text("trace_code", lang, code=state.trace_code)
            elif state.phase == "idle":
                root.headline = text("welcome", lang)
                root.detail_text = root.merchant
            else:
                root.headline = text("total", lang)
                root.detail_text = ""
            if state != self._drawn:
                if self._drawn is None or state.lines != self._drawn.lines:
                    self._draw_lines(state)
                root.phase = state.phase
                if self._drawn is None or (state.phase, state.sale_id) != \
                        (self._drawn.phase, self._drawn.sale_id):
                    self._announce = {"type": "shown", "phase": state.phase,
                                      "sale_id": state.sale_id, "timing": self._timing}
                self._drawn = state

        def _draw_lines(self, state: DisplayState) -> None:
            rows = self.root_widget.ids.lines
            rows.clear_widgets()
            for line in state.lines:
                rows.add_widget(DisplayLineRow(name=line.name, detail=line.detail,
                                               amount=format_fen(line.amount_fen)))

        def _flipped(self, *args: Any) -> None:
            announce, self._announce = self._announce, None
            if announce is None:
                return
            announce["t_ns"] = time.monotonic_ns()
            announce.update(announce.pop("timing"))
            with self._send_lock, contextlib.suppress(OSError):
                self.conn.send_bytes(encode(announce))

    return CustomerDisplayApp()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", required=True, help="the vendor screen's display socket")
    parser.add_argument("--merchant", default="", help="name shown while idle")
    parser.add_argument("--geometry", default=None, help="WIDTHxHEIGHT+LEFT+TOP of the window")
    parser.add_argument("--fullscreen", action="store_true")
    args = parser.parse_args(argv)
    from .window_setup import configure_window

    has_cjk = configure_window(args.geometry, fullscreen=args.fullscreen)
    _build_app(args.address, args.merchant, has_cjk).run()


if __name__ == "__main__":
    logging.basicConfig(level=os.environ.get("TRACEPAY_LOG_LEVEL", "INFO"))
    main()
