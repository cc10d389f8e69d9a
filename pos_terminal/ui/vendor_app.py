"""The vendor screen (Kivy): a thin shell that binds widgets to ``VendorScreenModel``.

Every button calls one model action and then ``refresh`` copies the model into Kivy
properties the .kv files bind to. Network events (payment results from the MQTT thread)
hop onto the UI thread with ``Clock.schedule_once`` before they touch anything.
Import this module only after ``pos_terminal.ui.app`` has configured the window.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from kivy.app import App
from kivy.clock import Clock
from kivy.core.window import Window
from kivy.lang import Builder
from kivy.properties import (
    BooleanProperty,
    ColorProperty,
    DictProperty,
    NumericProperty,
    StringProperty,
)
from kivy.uix.behaviors import ButtonBehavior
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.button import Button
from kivy.uix.screenmanager import NoTransition, Screen, ScreenManager

from market_protocol import format_fen

from ..counter import Counter
from ..day_report import day_start_ms, day_summary, render_z_report
from ..provisioning import ProvisioningError
from ..scales import Scale, ScaleError, SimulatedScale, take_weight
from ..terminal import Terminal, TerminalError
from .day_model import sale_view, z_report_lines
from .display_link import VendorLink
from .enrol_model import KEYBOARD_ROWS, EnrolmentModel
from .environment import CONTROL_ENV, DISPLAY_CONTROL_ENV
from .keypad import KeypadMode
from .line_text import line_detail, product_name
from .messages import Notice, scale_notice, service_notice
from .plu import load_plu_table
from .print_jobs import print_in_background
from .refund_model import RefundModel
from .scan_input import WedgeBuffer, start_serial_reader
from .strings import STRINGS, next_language, text
from .ui_control import UIControl
from .vendor_model import VendorScreenModel

__all__ = ["VendorApp"]

log = logging.getLogger(__name__)

KV_DIR = Path(__file__).with_name("kv")


def _rgba(hex_colour: str) -> tuple[float, float, float, float]:
    value = hex_colour.lstrip("#")
    return (int(value[0:2], 16) / 255, int(value[2:4], 16) / 255, int(value[4:6], 16) / 255, 1)


def _sale_amount(total_fen: int, refunded_fen: int) -> str:
    """A row's amount, with what the gateway says was refunded of it."""
    if not refunded_fen:
        return format_fen(total_fen)
    return f"{format_fen(total_fen)} (-{format_fen(refunded_fen)})"


def _enrol_key(key: str) -> Any:
    from kivy.factory import Factory

    return Factory.EnrolKey(text=key)


def _text_colour(background: tuple[float, ...]) -> tuple[float, float, float, float]:
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


class VendorApp(App):
    t = DictProperty()
    merchant_name = StringProperty()
    outbox_text = StringProperty()
    outbox_queued = NumericProperty(0)
    total_text = StringProperty()
    entry_text = StringProperty()
    keypad_mode = StringProperty(KeypadMode.WEIGHT)
    notice_text = StringProperty()
    notice_error = BooleanProperty(False)
    price_edit = BooleanProperty(False)
    locked = BooleanProperty(False)
    pending_text = StringProperty()
    has_cjk_font = BooleanProperty(False)
    unsent_warning = StringProperty()
    z_report_text = StringProperty()
    has_scale = BooleanProperty(False)
    scale_text = StringProperty()
    enrol_code_text = StringProperty()
    enrol_gateway_text = StringProperty()
    enrol_field = StringProperty("code")
    enrol_notice = StringProperty()
    enrol_error = BooleanProperty(False)
    enrol_busy = BooleanProperty(False)
    refund_title = StringProperty()
    refund_amount_text = StringProperty()
    refund_reason = StringProperty()
    refund_status = StringProperty()
    refund_busy = BooleanProperty(False)
    refund_done = BooleanProperty(False)
    refund_refused = BooleanProperty(False)

    def __init__(self, terminal: Terminal | None, *, lang: str = "zh",
                 has_cjk_font: bool = False, scale: Scale | None = None,
                 customer_display: bool = True, display_geometry: str | None = None,
                 data_dir: str | os.PathLike[str] | None = None, gateway_url: str = "",
                 scanner: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.terminal: Terminal | None = None
        self.model: VendorScreenModel | None = None
        self.has_cjk_font = has_cjk_font
        self.title = "tracepay"
        self.link = VendorLink(on_reply=self._display_reply)
        self.scale = scale
        self.has_scale = scale is not None
        self._scale_lock = threading.Lock()
        self._lang = lang
        self._scanner_device = scanner
        self._stop_scanner = lambda: None
        self.wedge = WedgeBuffer()
        self.enrol: EnrolmentModel | None = None
        self.refund: RefundModel | None = None
        if terminal is None:
            if data_dir is None:
                raise ValueError("without an enrolled terminal the app needs data_dir")
            self.enrol = EnrolmentModel(data_dir, gateway_url=gateway_url, lang=lang)
        else:
            self._attach(terminal)
        self.t = {key: table[lang] for key, table in STRINGS.items()}
        self.display_shown: dict[str, Any] = {}
        self.selected_sale: str | None = None
        self._want_display = customer_display
        self._display_geometry = display_geometry
        self._display_process: subprocess.Popen | None = None
        self._display_started = 0.0
        self._keys_drawn: tuple = ()
        self._cart_drawn: tuple = ()
        self._control: UIControl | None = None
        self._unsubscribe = lambda: None
        self.counter: Counter | None = None

    def _attach(self, terminal: Terminal) -> None:
        """Bind the enrolled terminal: from start-up, or once the enrolment screen is done."""
        self.terminal = terminal
        self.merchant_name = terminal.config.merchant_name
        products = terminal.catalogue()
        try:
            plu_table = load_plu_table(terminal.data_dir, products)
        except ValueError as exc:
            log.error("%s; scale labels will not be recognised", exc)
            plu_table = {}
        lang = self.model.lang if self.model else (self.enrol.lang if self.enrol else self._lang)
        self.model = VendorScreenModel(products, terminal,
                                       send_to_display=self.link.send,
                                       save_products=terminal.save_catalogue,
                                       scale_weight_g=self._scale_weight, lang=lang,
                                       plu_table=plu_table)

    # -- life cycle ----------------------------------------------------------------------
    def build(self) -> ScreenManager:
        for name in ("theme", "ring_up", "sales", "z_report", "enrol", "refund"):
            Builder.load_file(str(KV_DIR / f"{name}.kv"))
        self.manager = ScreenManager(transition=NoTransition())
        if self.terminal is None:
            screen = EnrolScreen()
            self.manager.add_widget(screen)
            self._draw_enrol_keys(screen.ids.enrol_keys)
        else:
            self._add_day_screens()
        self.refresh()
        return self.manager

    def _add_day_screens(self) -> None:
        for screen in (RingUpScreen(), SalesScreen(), ZReportScreen(), RefundScreen()):
            self.manager.add_widget(screen)

    def on_start(self) -> None:
        Window.bind(on_textinput=self._on_textinput, on_key_down=self._on_key_down)
        if self.terminal is not None:
            self._start_services()
        if self._scanner_device:
            self._stop_scanner = start_serial_reader(
                self._scanner_device,
                lambda line: Clock.schedule_once(lambda dt: self.scanned(line), 0))
        self._control = UIControl.from_environment(
            self.snapshot, extra_ops={"scale_place": self._scale_place,
                                      "type": self._type_op})

    def _start_services(self) -> None:
        assert self.terminal is not None
        self._unsubscribe = self.terminal.on_result(self._result_from_network)
        self.counter = Counter(self.terminal)  # announces (and may print) each payment
        self.terminal.start()
        if self._want_display:
            self._start_display()
        Clock.schedule_interval(self._tick, 0.5)
        if self.scale is not None:
            threading.Thread(target=self._watch_scale, name="scale", daemon=True).start()

    # -- keyboard wedge, serial reader and enrolment ---------------------------------------
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
        if self.model is None:
            return
        if self.manager.current != "ring_up":
            self.manager.current = "ring_up"
        self.model.scan_barcode(line)
        self.refresh()

    def _draw_enrol_keys(self, grid: Any) -> None:
        for row in KEYBOARD_ROWS:
            for key in row:
                grid.add_widget(_enrol_key(key))

    def enrol_press(self, key: str) -> None:
        if self.enrol is None or self.enrol.busy:
            return
        self.enrol.press(key)
        self.refresh()

    def enrol_select(self, field: str) -> None:
        if self.enrol is not None:
            self.enrol.select_field(field)
            self.refresh()

    def enrol_language(self) -> None:
        if self.enrol is not None:
            self.enrol.lang = next_language(self.enrol.lang)
            self.refresh()

    def enrol_submit(self) -> None:
        """Claim off the UI thread (the gateway may take seconds); the screen stays live."""
        enrol = self.enrol
        if enrol is None:
            return
        target = enrol.begin()
        self.refresh()
        if target is None:
            return

        def claim() -> None:
            outcome = enrol.claim(*target)
            Clock.schedule_once(lambda dt: self._enrol_finished(outcome), 0)
        threading.Thread(target=claim, name="enrol-claim", daemon=True).start()

    def _enrol_finished(self, outcome: Any) -> None:
        enrol = self.enrol
        assert enrol is not None
        config = enrol.finish(outcome)
        self.refresh()
        if config is None:
            return
        try:
            terminal = Terminal.open(enrol.data_dir)
        except (ProvisioningError, OSError, ValueError) as exc:  # stored, yet unreadable
            enrol.config = None
            enrol.notice = Notice("enrol_refused", (("reason", str(exc)),), True)
            self.refresh()
            return
        self._attach(terminal)
        self._add_day_screens()
        self.manager.current = "ring_up"
        self.manager.remove_widget(self.manager.get_screen("enrol"))
        self.enrol = None
        self.model.tell("enrol_done", device=config.device_id)
        self._start_services()
        self.refresh()

    # -- scale ---------------------------------------------------------------------------
    def _scale_weight(self) -> int | None:
        """Grams for a tapped key; ScaleError (a RuntimeError) says why a reading is refused."""
        if self.scale is None:
            return None
        with self._scale_lock:
            return take_weight(self.scale)

    def _watch_scale(self) -> None:
        """Read the scale off the UI thread (a serial scale can take tens of ms to answer)."""
        while self.scale is not None:
            try:
                with self._scale_lock:
                    reading = self.scale.read()
                key = "scale_weight" if reading.stable else "scale_moving"
                label = text(key, self.model.lang, grams=reading.weight_g)
            except ScaleError as exc:
                label = scale_notice(exc).render(self.model.lang)
            Clock.schedule_once(lambda dt, label=label: setattr(self, "scale_text", label), 0)
            time.sleep(0.3)

    def scale_zero(self) -> None:
        self._scale_button("zero")

    def scale_tare(self) -> None:
        self._scale_button("tare")

    def _scale_button(self, action: str) -> None:
        if self.scale is None:
            return
        try:
            with self._scale_lock:
                getattr(self.scale, action)()
            self.model.notice = None
        except ScaleError as exc:
            self.model.notice = scale_notice(exc)
        self.refresh()

    def _scale_place(self, request: dict[str, Any]) -> dict[str, Any]:
        """Control op for the simulated scale: put goods on the platter."""
        if not isinstance(self.scale, SimulatedScale):
            raise ValueError("scale_place needs the simulated scale (--scale simulated)")
        self.scale.place(int(request["grams"]), settle=bool(request.get("settle", True)))
        return {"ok": True}

    def on_stop(self) -> None:
        self._stop_scanner()
        self._unsubscribe()
        if self.counter is not None:
            self.counter.close()
        if self.terminal is not None:
            self.terminal.stop()
        if self._display_process and self._display_process.poll() is None:
            self._display_process.terminate()
            try:
                self._display_process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._display_process.kill()
        self.link.close()

    def _start_display(self) -> None:
        env = {**os.environ, **self.link.child_env()}
        env.pop(CONTROL_ENV, None)
        if os.environ.get(DISPLAY_CONTROL_ENV):
            env[CONTROL_ENV] = os.environ[DISPLAY_CONTROL_ENV]
        argv = [sys.executable, "-m", "pos_terminal.ui.display_app", "--address",
                self.link.address, "--merchant", self.merchant_name]
        if self._display_geometry:
            argv += ["--geometry", self._display_geometry]
        self._display_process = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL)
        self._display_started = time.monotonic()

    def _display_reply(self, reply: dict[str, Any]) -> None:
        if reply.get("type") == "shown":
            self.display_shown = reply

    def _result_from_network(self, stored: Any, result: dict[str, Any]) -> None:
        Clock.schedule_once(lambda dt: self._apply_result(result), 0)

    def _apply_result(self, result: dict[str, Any]) -> None:
        self.model.payment_result(result)
        self._follow_refund()
        self.refresh()

    def _tick(self, dt: float) -> None:
        self.model.tick()
        self._keep_display_alive()
        self._follow_refund()
        self.refresh()

    def _keep_display_alive(self) -> None:
        """A crashed or closed customer display comes back within seconds, showing the
        current screen (the link replays it), so a QR is never lost with the window."""
        process = self._display_process
        if not self._want_display or process is None or process.poll() is None:
            return
        if time.monotonic() - self._display_started < 3.0:
            return  # crashing at start-up: do not spin
        log.warning("customer display exited with %s; starting it again", process.returncode)
        self._start_display()

    # -- state for tests and benchmarks --------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        if self.model is None or self.terminal is None:
            enrol = self.enrol
            return {"screen": self.manager.current, "lang": enrol.lang if enrol else None,
                    "enrol": None if enrol is None else {
                        "code": enrol.code, "gateway": enrol.gateway, "field": enrol.field,
                        "busy": enrol.busy, "notice": enrol.notice_text(),
                        "notice_key": enrol.notice.key if enrol.notice else None},
                    "display_connected": self.link.connected}
        model = self.model
        pending = model.pending
        return {
            "screen": self.manager.current, "lang": model.lang, "total_fen": model.total_fen,
            "lines": [line.to_record() for line in model.cart.lines],
            "keypad": model.keypad.buffer, "mode": model.keypad.mode,
            "notice": (self.refund.notice_text() if self.refund and self.refund.notice
                       else model.notice_text()), "locked": model.locked,
            "pending_sale_id": pending.sale_id if pending else None,
            "pending_seq": pending.seq if pending else None,
            "phase": model.display.state.phase, "display_connected": self.link.connected,
            "display_pid": self._display_process.pid if self._display_process else None,
            "display_shown": self.display_shown, "outbox": self.terminal.outbox_counts(),
            "products": {p.code: p.unit_price_fen for p in model.products},
            "price_for": model.price_for,
            "z_report": self.z_report_text, "scale_text": self.scale_text, "unsent_warning": self.unsent_warning,
            "sales": [{"seq": v.seq, "sale_id": v.sale_id, "status": v.status,
                       "total_fen": v.total_fen}
                      for v in map(sale_view, self.terminal.today_sales())],
            "selected_sale": self.selected_sale,
            "sale_rows": {str(row.seq): row.amount for row in
                          self.manager.get_screen("sales").ids.sale_rows.children},
            "refund": None if self.refund is None else {
                "sale_id": self.refund.sale.sale_id, "amount_fen": self.refund.amount_fen(),
                "refundable_fen": self.refund.refundable_fen, "reason": self.refund.reason_text(),
                "outcome": self.refund.outcome, "refunded_fen": self.refund.sale.refunded_fen,
                "status": self.refund_status, "busy": self.refund_busy},
        }

    # -- drawing -------------------------------------------------------------------------
    def refresh(self) -> None:
        if self.enrol is not None:
            self._refresh_enrol(self.enrol)
        if self.model is None:
            return
        model = self.model
        lang = model.lang
        self.t = {key: table[lang] for key, table in STRINGS.items()}
        screen = self.manager.get_screen("ring_up")
        self._draw_keys(screen.ids.quick_keys)
        self._draw_cart(screen.ids.cart_rows)
        self.total_text = format_fen(model.total_fen)
        unit = {"weight": text("grams", lang), "quantity": text("pieces", lang),
                "price": "¥"}[model.keypad.mode]
        self.entry_text = f"{model.keypad.buffer or '0'} {unit}"
        self.keypad_mode = model.keypad.mode
        self.price_edit = model.price_edit
        self.locked = model.locked
        self.pending_text = self._pending_text()
        self.notice_text = model.notice_text()
        self.notice_error = bool(model.notice and model.notice.error)
        counts = self.terminal.outbox_counts()
        self.outbox_queued = counts["queued"]
        self.outbox_text = text("outbox", lang, **counts)
        if self.refund is not None:
            self._refresh_refund(self.refund, lang)

    def _refresh_refund(self, refund: RefundModel, lang: str) -> None:
        refund.lang = lang
        sale = refund.sale
        self.refund_title = text("refund_title", lang, seq=sale.seq,
                                 paid=format_fen(sale.total_fen),
                                 left=format_fen(refund.refundable_fen))
        if refund.keypad.buffer:
            self.refund_amount_text = f"¥{refund.keypad.buffer}"
        else:
            self.refund_amount_text = text("refund_all", lang,
                                           amount=format_fen(refund.refundable_fen))
        self.refund_reason = refund.reason or ""
        self.refund_status = refund.status_text()
        self.refund_done = refund.outcome is not None
        self.refund_refused = bool(refund.outcome and refund.outcome.get("state") == "refused")
        if refund.notice is not None:
            self.notice_text = refund.notice_text()
            self.notice_error = refund.notice.error

    def _refresh_enrol(self, enrol: EnrolmentModel) -> None:
        self.t = {key: table[enrol.lang] for key, table in STRINGS.items()}
        self.enrol_code_text = enrol.code
        self.enrol_gateway_text = enrol.gateway
        self.enrol_field = enrol.field
        self.enrol_notice = enrol.notice_text()
        self.enrol_error = bool(enrol.notice and enrol.notice.error)
        self.enrol_busy = enrol.busy

    def _pending_text(self) -> str:
        state = self.model.display.state
        left = state.seconds_left(int(time.time() * 1000))
        if self.model.locked and left is not None:
            return f"{text('waiting', self.model.lang)} {left}s"
        if state.phase in ("paid", "failed", "expired", "cancelled"):
            return text(state.phase, self.model.lang)
        return ""

    def _draw_keys(self, grid: Any) -> None:
        model = self.model
        drawn = (model.lang, tuple(model.products))
        if drawn == self._keys_drawn:
            return
        self._keys_drawn = drawn
        grid.clear_widgets()
        for product in model.products:
            colour = _rgba(product.colour)
            grid.add_widget(QuickKey(text=model.key_label(product), code=product.code,
                                     key_colour=colour, text_colour=_text_colour(colour),
                                     tap_id=f"product-{product.code}"))

    def _draw_cart(self, rows: Any) -> None:
        """Rebuild the rows only when the cart, the selection or the language changed: the
        clock refreshes twice a second and must not re-render text for nothing."""
        model = self.model
        drawn = (model.lang, model.cart.lines, model.selected_line)
        if drawn == self._cart_drawn:
            return
        self._cart_drawn = drawn
        rows.clear_widgets()
        for index, line in enumerate(model.cart.lines):
            row = CartRow(index=index, name=product_name(line.product, model.lang),
                          detail=line_detail(line, model.lang),
                          amount=format_fen(line.amount_fen),
                          selected=index == model.selected_line, tap_id=f"line-{index}")
            row.bind(on_release=lambda row: self.select_line(row.index))
            rows.add_widget(row)

    # -- ring-up actions (each is one tap) -----------------------------------------------
    def _act(self, action: Any, *args: Any) -> None:
        action(*args)
        self.refresh()

    def press_key(self, key: str) -> None:
        self._act(self.model.press_key, key)

    def set_mode(self, mode: str) -> None:
        self._act(self.model.set_mode, mode)

    def tap_product(self, code: str) -> None:
        self._act(self.model.tap_product, code)

    def select_line(self, index: int) -> None:
        self._act(self.model.select_line, index)

    def long_press_product(self, code: str) -> None:
        self._act(self.model.long_press_product, code)

    def release_product(self, key: QuickKey) -> None:
        """A key's release adds a line, unless the press was a long one (re-pricing)."""
        if key.long_fired:
            key.long_fired = False
            return
        self.tap_product(key.code)

    def edit_line(self) -> None:
        self._act(self.model.edit_line)

    def delete_line(self) -> None:
        self._act(self.model.delete_line)

    def clear_cart(self) -> None:
        self._act(self.model.clear_cart)

    def toggle_price_edit(self) -> None:
        self._act(self.model.toggle_price_edit)

    def toggle_language(self) -> None:
        self._act(self.model.toggle_language)

    def charge(self) -> None:
        self._act(self.model.charge)

    def charge_cash(self) -> None:
        if self.counter is not None:
            self._act(self.model.charge_cash, lambda cart, received: self.counter.settle(
                cart, all_cash=True, received_fen=received))

    def cancel_charge(self) -> None:
        cancelled = self.model.cancel_charge()
        if cancelled is not None:
            try:
                self.terminal.void(cancelled.sale_id)
            except TerminalError as exc:  # paid in the meantime: the result will say so
                log.warning("could not void cancelled sale %s: %s", cancelled.sale_id, exc)
        self.refresh()

    # -- day operations ------------------------------------------------------------------
    def show_ring_up(self) -> None:
        self.manager.current = "ring_up"
        self.refresh()

    def show_sales(self) -> None:
        self.manager.current = "sales"
        self._draw_sales()

    def _draw_sales(self) -> None:
        rows = self.manager.get_screen("sales").ids.sale_rows
        rows.clear_widgets()
        lang = self.model.lang
        for stored in reversed(self.terminal.today_sales()):
            view = sale_view(stored)
            row = SaleRow(seq=view.seq, sale_id=view.sale_id,
                          summary=f"#{view.seq}  {view.time}",
                          status=text(f"status_{view.status}", lang),
                          amount=_sale_amount(view.total_fen, stored.refunded_fen),
                          selected=view.sale_id == self.selected_sale, tap_id=f"sale-{view.seq}")
            row.bind(on_release=lambda row: self._select_sale(row.sale_id))
            rows.add_widget(row)
        self.refresh()

    def _select_sale(self, sale_id: str) -> None:
        self.selected_sale = None if sale_id == self.selected_sale else sale_id
        self._draw_sales()

    def void_selected(self) -> None:
        if not self.selected_sale:
            self.model.tell("need_sale", error=True)
        else:
            try:
                self.terminal.void(self.selected_sale)
                pending = self.model.pending
                if pending is not None and pending.sale_id == self.selected_sale:
                    self.model.cancel_charge()  # its QR must not stay on the display
                self.model.tell("voided")
            except TerminalError as exc:
                self.model.notice = service_notice("void_failed", exc)
        self._draw_sales()

    def print_receipt(self) -> None:
        """The selected sale's receipt; with none selected, the last receipt again."""
        sale_id, counter = self.selected_sale, self.counter
        job = (lambda: counter.print_receipt(sale_id)) if sale_id else counter.reprint_last
        print_in_background(job, self._printed)

    def print_z_report(self) -> None:
        print_in_background(lambda: self.counter.print_z_report(force=True), self._printed)

    def _printed(self, notice: Notice) -> None:
        Clock.schedule_once(lambda dt: (setattr(self.model, "notice", notice), self.refresh()))

    # -- refunds -------------------------------------------------------------------------
    def open_refund(self) -> None:
        """The selected paid sale's refund screen (amount, reason, result)."""
        stored = self.terminal.sale(self.selected_sale) if self.selected_sale else None
        if stored is None:
            self.model.tell("need_sale", error=True)
            self._draw_sales()
            return
        refund = RefundModel(stored, self.terminal.request_refund, self.model.lang)
        if not refund.can_refund:
            self.model.tell("refund_not_paid", error=True)
            self._draw_sales()
            return
        self.refund = refund
        self.model.notice = None
        self.manager.get_screen("refund").ids.refund_words.text = ""
        self.manager.current = "refund"
        self.refresh()

    def close_refund(self) -> None:
        self.refund = None
        self.manager.current = "sales"
        self._draw_sales()

    def refund_press(self, key: str) -> None:
        if self.refund is not None:
            self.refund.notice = None
            self.refund.press(key)
            self.refresh()

    def refund_choose(self, reason: str) -> None:
        if self.refund is not None and self.refund.outcome is None:
            self.refund.choose_reason(reason)
            self.refresh()

    def refund_words(self, words: str) -> None:
        if self.refund is not None and self.refund.outcome is None:
            self.refund.set_free_text(words)

    def refund_send(self) -> None:
        """Queue and try to send off the UI thread: a slow gateway must not freeze the stall."""
        refund = self.refund
        if refund is None or self.refund_busy:
            return
        self.refund_busy = True

        def send() -> None:
            refund.submit()
            Clock.schedule_once(lambda dt: self._refund_sent(refund), 0)
        threading.Thread(target=send, name="refund", daemon=True).start()

    def _refund_sent(self, refund: RefundModel) -> None:
        self.refund_busy = False
        if refund.outcome is not None:
            self.model.tell("refund_requested")
        self.refresh()

    def _follow_refund(self) -> None:
        """The retry loop sends queued refunds and the gateway's result carries the refunded
        amount: both land in the outbox, so re-read the sale and its request from there."""
        refund = self.refund
        if refund is None or self.refund_busy:
            return
        stored = self.terminal.sale(refund.sale.sale_id)
        request = (self.terminal.outbox.request(refund.outcome["refund_no"])
                   if refund.outcome else None)
        if stored is not None:
            refund.update(stored, request)

    def _day_summary(self) -> dict[str, Any]:
        day_ms = day_start_ms(int(time.time() * 1000))
        return day_summary(self.terminal.today_sales(), day_ms=day_ms)

    def show_z_report(self) -> None:
        lang = self.model.lang
        summary = self._day_summary()
        lines = z_report_lines(summary, lang, self.merchant_name, self.terminal.device_id)
        self.z_report_text = lines[0] + "\n\n" + "\n".join(lines[1:])
        unsent = self.terminal.outbox_counts()["queued"]
        self.unsent_warning = text("unsent_warning", lang, count=unsent) if unsent else ""
        self.manager.current = "z_report"
        self.refresh()

    def save_z_report(self) -> Path:
        """The day's Z report as a receipt-width PNG in ``<data-dir>/reports/``."""
        summary = self._day_summary()
        png = render_z_report(summary, merchant=self.merchant_name,
                              device_id=self.terminal.device_id,
                              printed_at=datetime.now().astimezone().isoformat(timespec="seconds"))
        path = self.terminal.data_dir / "reports" / f"z-{summary['day']}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png)
        self.model.tell("saved_to", path=str(path))
        self.refresh()
        return path
