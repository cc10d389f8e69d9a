"""The vendor screen (Kivy): a thin shell that binds widgets to ``VendorScreenModel``.

Every button calls one model action and then ``refresh`` copies the model into Kivy
properties the .kv files bind to. Network events (payment results from the MQTT thread)
hop onto the UI thread with ``Clock.schedule_once`` before they touch anything.
Import this module only after ``pos_terminal.ui.app`` has configured the window.
"""

from __future__ import annotations

import logging
import os
import threading
import time
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
from kivy.uix.screenmanager import NoTransition, ScreenManager

from market_protocol import format_fen

from ..counter import Counter
from ..scales import Scale
from ..terminal import Terminal, TerminalError
from .display_link import VendorLink
from .display_process import DisplayProcess
from .enrol_model import EnrolmentModel
from .keypad import KeypadMode
from .line_text import line_detail, product_name
from .messages import clock_notice
from .plu import load_plu_table
from .refund_model import RefundModel
from .scan_input import WedgeBuffer, start_serial_reader
from .status_look import status_colour, status_icon
from .strings import STRINGS, text
from .ui_control import UIControl
from .vendor_binding import TerminalBinding
from .vendor_day import DayActions
from .vendor_enrol import EnrolActions
from .vendor_keyboard import KeyboardInput
from .vendor_layout import ScreenFit
from .vendor_model import VendorScreenModel
from .vendor_refund import RefundActions
from .vendor_scale import ScaleActions
from .vendor_snapshot import vendor_snapshot
from .vendor_widgets import (
    CartRow,
    EnrolScreen,
    QuickKey,
    RefundScreen,
    RingUpScreen,
    SalesScreen,
    ZReportScreen,
    rgba,
    text_colour,
)

__all__ = ["VendorApp"]

log = logging.getLogger(__name__)

KV_DIR = Path(__file__).with_name("kv")


class VendorApp(KeyboardInput, EnrolActions, ScaleActions, DayActions, RefundActions,
                TerminalBinding, ScreenFit, App):
    """The vendor's window: ring-up, with keyboard input and the enrolment, scale, day and
    refund screens mixed in from their own modules."""

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
    pending_rgba = ColorProperty((1.0, 0.76, 0.03, 1))
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
        self.customer_display = (DisplayProcess(self.link, geometry=display_geometry)
                                 if customer_display else None)
        self._keys_drawn: tuple = ()
        self._cart_drawn: tuple = ()
        self._control: UIControl | None = None
        self._unsubscribe = lambda: None
        self.counter: Counter | None = None

    def _attach(self, terminal: Terminal) -> None:
        """Bind the enrolled terminal: from start-up, or once the enrolment screen is done."""
        self._terminal = terminal
        self.merchant_name = terminal.config.merchant_name
        products = terminal.catalogue()
        try:
            plu_table = load_plu_table(terminal.data_dir, products)
        except ValueError as exc:
            log.error("%s; scale labels will not be recognised", exc)
            plu_table = {}
        lang = (self._model.lang if self._model else
                (self.enrol.lang if self.enrol else self._lang))
        self._model = VendorScreenModel(products, terminal,
                                        send_to_display=self.link.send,
                                        save_products=terminal.save_catalogue,
                                        scale_weight_g=self._scale_weight, lang=lang,
                                        plu_table=plu_table)

    # -- life cycle ----------------------------------------------------------------------
    def build(self) -> ScreenManager:
        self.fit_window()
        for name in ("theme", "ring_up", "sales", "z_report", "enrol", "refund"):
            Builder.load_file(str(KV_DIR / f"{name}.kv"))
        self.manager = ScreenManager(transition=NoTransition())
        if self._terminal is None:
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
        if self._terminal is not None:
            self._start_services()
        if self._scanner_device:
            self._stop_scanner = start_serial_reader(
                self._scanner_device,
                lambda line: Clock.schedule_once(lambda dt: self.scanned(line), 0))
        self._control = UIControl.from_environment(
            self.snapshot, extra_ops={"scale_place": self._scale_place,
                                      "type": self._type_op})

    def _start_services(self) -> None:
        self._unsubscribe = self.terminal.on_result(self._result_from_network)
        self.counter = Counter(self.terminal)  # announces (and may print) each payment
        self.terminal.start()
        if self.customer_display is not None:
            self.customer_display.start(self.merchant_name)
        Clock.schedule_interval(self._tick, 0.5)
        if self.scale is not None:
            threading.Thread(target=self._watch_scale, name="scale", daemon=True).start()

    def on_stop(self) -> None:
        self._stop_scanner()
        self._unsubscribe()
        if self.counter is not None:
            self.counter.close()
        if self._terminal is not None:
            self._terminal.stop()
        if self.customer_display is not None:
            self.customer_display.stop()
        self.link.close()

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
        if self.customer_display is not None:
            self.customer_display.keep_alive()
        self._follow_refund()
        self.refresh()

    # -- state for tests and benchmarks --------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        return vendor_snapshot(self)

    # -- drawing -------------------------------------------------------------------------
    def refresh(self) -> None:
        if self.enrol is not None:
            self._refresh_enrol(self.enrol)
        if self._model is None:
            return
        model = self._model
        lang = model.lang
        self.t = {key: table[lang] for key, table in STRINGS.items()}
        screen = self.manager.get_screen("ring_up")
        self._draw_keys(screen.ids.quick_keys)
        self._draw_cart(screen.ids.cart_rows)
        self.total_text = format_fen(model.total_fen)
        unit = {"weight": text("grams", lang), "quantity": text("pieces", lang),
                "price": "¥"}[model.keypad.mode]
        held = model.held_price_fen
        self.entry_text = f"{model.keypad.buffer or '0'} {unit}" + (
            f"  @{format_fen(held)}" if held is not None and model.keypad.mode != "price" else "")
        self.keypad_mode = model.keypad.mode
        self.price_edit = model.price_edit
        self.locked = model.locked
        self.pending_text = self._pending_text()
        self.pending_rgba = status_colour(model.display.state.phase, (1.0, 0.76, 0.03, 1))
        notice = model.notice or clock_notice(self.terminal.clock_check.status())
        self.notice_text = notice.render(lang) if notice else ""
        self.notice_error = bool(notice and notice.error)
        counts = self.terminal.outbox_counts()
        self.outbox_queued = counts["queued"]
        self.outbox_text = text("outbox", lang, **counts)
        if self.refund is not None:
            self._refresh_refund(self.refund, lang)

    def _pending_text(self) -> str:
        state = self.model.display.state
        left = state.seconds_left(int(time.time() * 1000))
        if self.model.locked and left is not None:
            return f"{text('waiting', self.model.lang)} {left}s"
        if state.phase in ("paid", "failed", "expired", "cancelled"):
            return f"{status_icon(state.phase, self.has_cjk_font)} {text(state.phase, self.model.lang)}"
        return ""

    def _draw_keys(self, grid: Any) -> None:
        model = self.model
        drawn = (model.lang, tuple(model.products))
        if drawn == self._keys_drawn:
            return
        self._keys_drawn = drawn
        grid.clear_widgets()
        for product in model.products:
            colour = rgba(product.colour)
            grid.add_widget(QuickKey(text=model.key_label(product), code=product.code,
                                     key_colour=colour, text_colour=text_colour(colour),
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

    def free_amount(self) -> None:
        self._act(self.model.free_amount)

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
