"""The vendor screen's state and every action a tap can cause, with no Kivy in sight.

The Kivy screen binds buttons to these methods and redraws from ``snapshot``-style
attributes; a test drives the same methods and reads the same attributes. What the customer
sees is pushed as display messages through ``send_to_display`` (IPC in the real app, a list
in tests), and mirrored in a local ``CustomerDisplayModel`` so the vendor sees it too.

Ring-up follows the fastest common POS pattern: type the amount first (or let the scale give
it), then tap the product key. One tap per line when the scale supplies the weight.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from market_protocol.money import format_fen, parse_yuan

from ..cart import Cart, CartError, free_amount_product
from ..catalogue import Product
from ..terminal import TerminalError
from .display_model import CustomerDisplayModel, DisplayState, Phase
from .keypad import Keypad, KeypadMode
from .label_entry import add_from_label
from .line_text import display_line, price_text, product_name
from .messages import Notice, scale_notice, service_notice
from .strings import LANGUAGES, next_language

__all__ = ["VendorScreenModel", "ChargeSource", "Notice", "QR_LIFETIME_MS"]

log = logging.getLogger(__name__)

#: How long the gateway accepts a QR (protocol.md, section 4: default 300 s).
QR_LIFETIME_MS = 300_000


class ChargeSource(Protocol):
    """What the vendor screen needs from the terminal service to charge a cart."""

    def charge(self, cart: Cart, *, render_png: bool = True, tender: Any = None) -> Any: ...


class VendorScreenModel:
    """State of one vendor screen. Every public method is one user action."""

    def __init__(self, products: list[Product], terminal: ChargeSource, *,
                 send_to_display: Callable[[dict[str, Any]], None] = lambda message: None,
                 save_products: Callable[[list[Product]], None] = lambda products: None,
                 scale_weight_g: Callable[[], int | None] = lambda: None,
                 # returns grams, None when no scale is attached, or raises RuntimeError
                 clock_ms: Callable[[], int] | None = None, lang: str = "zh",
                 plu_table: dict[str, str] | None = None) -> None:
        if lang not in LANGUAGES:
            raise ValueError(f"unknown language {lang!r}; expected one of {LANGUAGES}")
        self.products = list(products)
        self.terminal = terminal
        self.cart = Cart()
        self.keypad = Keypad()
        self.lang = lang
        self.selected_line: int | None = None
        self.price_edit = False
        self.price_for: str | None = None  # the key a long press is re-pricing
        self.plu_table = dict(plu_table or {})
        self.notice: Notice | None = None
        self.held_price_fen: int | None = None  # a typed unit price waiting for its weight
        self.pending: Any = None  # the ChargedSale awaiting its payment result
        self.display = CustomerDisplayModel()
        self._send = send_to_display
        self._save_products = save_products
        self._scale_weight_g = scale_weight_g
        self._clock_ms = clock_ms or (lambda: int(time.time() * 1000))
        self._emit({"type": "lang", "lang": lang})  # the display starts in our language

    # -- reading -------------------------------------------------------------------------
    @property
    def total_fen(self) -> int:
        return self.cart.total_fen

    @property
    def locked(self) -> bool:
        """While a QR is up the cart is frozen: the shopper is paying for what they saw."""
        return self.pending is not None

    def product(self, code: str) -> Product:
        for product in self.products:
            if product.code == code:
                return product
        raise KeyError(f"no quick key {code!r}")

    def key_label(self, product: Product) -> str:
        return f"{product_name(product, self.lang)}\n" \
               f"{price_text(product.unit_price_fen, product.unit, self.lang)}"

    def notice_text(self) -> str:
        return self.notice.render(self.lang) if self.notice else ""

    # -- keypad --------------------------------------------------------------------------
    def press_key(self, key: str) -> bool:
        accepted = self.keypad.press(key)
        if not accepted:
            self.tell("bad_number", error=True)
        return accepted

    def set_mode(self, mode: str) -> None:
        """Leaving 单价 mode with a price typed keeps it for the next line: the vendor types
        the price, then the weight, then taps the key."""
        if self.keypad.mode == KeypadMode.PRICE and mode != KeypadMode.PRICE:
            self.held_price_fen = self.keypad.value_or_none() or self.held_price_fen
        self.keypad.set_mode(mode)

    # -- ring-up -------------------------------------------------------------------------
    def tap_product(self, code: str) -> None:
        """Add a line for the key (or, in price-edit mode, give the key the typed price)."""
        product = self.product(code)
        if self.price_edit:
            self._set_price(product)
            return
        if self.price_for is not None:
            self._finish_key_price(product)
            return
        if self._refuse_when_locked():
            return
        typed_price = self.keypad.mode == KeypadMode.PRICE
        price = self.keypad.take() if typed_price else self.held_price_fen
        amount = None if typed_price else self.keypad.take()
        entry = "manual" if amount is not None else None
        if product.weighed and amount is None:
            try:
                amount = self._scale_weight_g()
            except RuntimeError as exc:  # a scale's refusal: in motion, below minimum, ...
                self.notice = scale_notice(exc)
                return
            entry = "scale" if amount is not None else None
        try:
            if product.weighed:
                if amount is None:
                    self._hold_price(price, product)
                    return
                self.cart.add(product, weight_g=amount, unit_price_fen=price,
                              weight_entry=entry)
            else:
                self.cart.add(product, quantity=amount or 1, unit_price_fen=price)
        except CartError as exc:
            self.notice = service_notice("charge_failed", exc)
            return
        self.held_price_fen = None
        self.keypad.set_mode(KeypadMode.WEIGHT)
        self.selected_line = None
        self.notice = None
        self._cart_changed()

    def _hold_price(self, price: int | None, product: Product) -> None:
        """No scale and no weight typed: keep a typed unit price for this line and ask for
        the weight (the price used to be lost here)."""
        if price is None:
            self.tell("need_weight", error=True)
            return
        self.held_price_fen = price
        self.keypad.set_mode(KeypadMode.WEIGHT)
        self.tell("need_weight_at_price", name=product_name(product, self.lang),
                  price=price_text(price, product.unit, self.lang))

    def free_amount(self) -> None:
        """The 金额 key: an amount typed in yuan becomes a line with no product key."""
        if self._refuse_when_locked():
            return
        value = self.keypad.take() if self.keypad.mode == KeypadMode.PRICE else None
        if value is None:
            self.keypad.set_mode(KeypadMode.PRICE)
            self.tell("need_free_amount", error=True)
            return
        try:
            self.cart.add(free_amount_product(value), quantity=1)
        except CartError as exc:
            self.notice = service_notice("charge_failed", exc)
            return
        self.keypad.set_mode(KeypadMode.WEIGHT)
        self.selected_line = None
        self.notice = None
        self._cart_changed()

    def scan_barcode(self, code: str) -> bool:
        """A scanned scale label (EAN-13 prefix 20-29) adds a line for its PLU's key."""
        if self._refuse_when_locked():
            return False
        return add_from_label(self, code)

    def select_line(self, index: int | None) -> None:
        if index is not None and not 0 <= index < len(self.cart):
            raise IndexError(f"no cart line {index}")
        self.selected_line = None if index == self.selected_line else index
        if self.selected_line is not None:
            unit = self.cart.lines[self.selected_line].product.unit
            self.keypad.set_mode(KeypadMode.QUANTITY if unit == "piece" else KeypadMode.WEIGHT)

    def edit_line(self) -> None:
        """Apply the keypad to the selected line: its weight, quantity or unit price."""
        if self._refuse_when_locked():
            return
        if self.selected_line is None:
            self.tell("need_line", error=True)
            return
        value = self.keypad.take()
        if value is None:
            self.tell("bad_number", error=True)
            return
        line = self.cart.lines[self.selected_line]
        try:
            if self.keypad.mode == KeypadMode.PRICE:
                self.cart.update(self.selected_line, unit_price_fen=value)
            elif line.product.weighed:
                self.cart.update(self.selected_line, weight_g=value)
            else:
                self.cart.update(self.selected_line, quantity=value)
        except CartError as exc:
            self.notice = service_notice("charge_failed", exc)
            return
        self.notice = None
        self._cart_changed()

    def delete_line(self) -> None:
        if self._refuse_when_locked():
            return
        if self.selected_line is None:
            self.tell("need_line", error=True)
            return
        self.cart.remove(self.selected_line)
        self.selected_line = None
        self._cart_changed()

    def clear_cart(self) -> None:
        if self._refuse_when_locked():
            return
        self.cart.clear()
        self.held_price_fen = None
        self.selected_line = None
        self.keypad.press("clear")
        self._cart_changed()

    # -- prices and language -------------------------------------------------------------
    def toggle_price_edit(self) -> None:
        self.price_edit = not self.price_edit
        self.price_for = None
        self.keypad.set_mode(KeypadMode.PRICE if self.price_edit else KeypadMode.WEIGHT)

    def long_press_product(self, code: str) -> None:
        """A long press on a key starts re-pricing that key alone: type the price, tap it."""
        product = self.product(code)
        if self.price_edit:
            return  # edit mode already re-prices every key tapped
        self.price_for = code
        self.keypad.set_mode(KeypadMode.PRICE)
        self.keypad.press("clear")
        self.tell("price_for", name=product_name(product, self.lang),
                  price=price_text(product.unit_price_fen, product.unit, self.lang))

    def _finish_key_price(self, product: Product) -> None:
        if product.code != self.price_for:
            self.price_for = None
            self.keypad.set_mode(KeypadMode.WEIGHT)
            self.tell("price_for_cancelled")
            return
        if self._set_price(product):
            self.price_for = None
            self.keypad.set_mode(KeypadMode.WEIGHT)

    def _set_price(self, product: Product) -> bool:
        value = self.keypad.take()
        if value is None:
            self.tell("bad_number", error=True)
            return False
        updated = product.with_price(value)
        self.products = [updated if p.code == product.code else p for p in self.products]
        self._save_products(self.products)
        self.tell("price_set", name=product_name(updated, self.lang),
                   price=price_text(value, updated.unit, self.lang))
        return True

    def toggle_language(self) -> None:
        self.lang = next_language(self.lang)
        self._emit({"type": "lang", "lang": self.lang})
        if not self.locked:
            self._cart_changed()

    # -- charging ------------------------------------------------------------------------
    def charge(self) -> Any:
        """Write the sale (the terminal's outbox first) and put its QR on the display."""
        if self.locked:
            return self.pending
        if not self.cart:
            self.tell("nothing_to_charge", error=True)
            return None
        try:
            charged = self.terminal.charge(self.cart, render_png=False)
        except (CartError, ValueError, TerminalError) as exc:
            self.notice = service_notice("charge_failed", exc)
            return None
        self.pending = charged
        self.selected_line = None
        self.notice = None
        sale = charged.sale
        issued_ms = int(sale.get("qr_issued_at", 0)) * 1000 or self._clock_ms()
        self._emit({
            "type": "qr", "sale_id": sale["sale_id"],
            "url": getattr(charged, "qr_text", "") or charged.qr_url,  # URL or EMVCo payload
            "trace_code": charged.trace_code, "total_fen": sale["total_fen"],
            "lines": [display_line(line, self.lang) for line in self.cart.lines],
            "expires_at_ms": issued_ms + QR_LIFETIME_MS,
        })
        return charged

    def charge_cash(self, settle: Callable[[Cart, int | None], Any]) -> Any:
        """Paid in cash at the counter: ``settle(cart, received_fen)`` counts it (抹零
        included); an amount typed in price (yuan) mode is the money handed over, and the
        notice says the change. Kept as paid at once, no QR; the cart clears."""
        if self._refuse_when_locked():
            return None
        if not self.cart:
            self.tell("nothing_to_charge", error=True)
            return None
        typed = self.keypad.buffer if self.keypad.mode == KeypadMode.PRICE else ""
        try:
            tender = settle(self.cart, parse_yuan(typed) if typed else None)
            charged = self.terminal.charge(self.cart, render_png=False, tender=tender)
        except (CartError, ValueError, TerminalError) as exc:
            self.notice = service_notice("charge_failed", exc)
            return None
        self._settle(paid=True)
        self._cart_changed()
        self.keypad.set_mode(KeypadMode.WEIGHT)  # the next shopper's goods are weighed
        if tender.received_fen is None:
            self.tell("cash_paid", amount=format_fen(charged.total_fen))
        else:
            self.tell("cash_change", amount=format_fen(charged.total_fen),
                      change=format_fen(tender.change_fen))
        return charged

    def payment_result(self, result: dict[str, Any]) -> None:
        """A ``tracepay.payment_result/1`` for one of this terminal's sales (already verified)."""
        status = result.get("status")
        pending = self.pending
        if pending is None or result.get("seq") != pending.sale.get("seq"):
            log.info("payment result for seq %s is not the sale on screen", result.get("seq"))
            return
        shown = {"paid": "paid", "failed": "failed", "expired": "expired"}.get(str(status))
        if shown is None:
            return  # created / pending: nothing changes on screen
        self._emit({"type": "result", "sale_id": pending.sale["sale_id"], "status": shown})
        self._settle(paid=shown == "paid")

    def cancel_charge(self) -> Any:
        """The shopper walked away: take the QR down; the caller voids the unpaid sale."""
        pending = self.pending
        if pending is None:
            return None
        self._emit({"type": "cancel", "sale_id": pending.sale["sale_id"]})
        self._settle(paid=False)
        return pending

    def tick(self) -> DisplayState:
        """Advance the mirror of the customer display; an expired QR unlocks the cart."""
        state = self.display.tick(self._clock_ms())
        if self.pending is not None and state.phase == Phase.EXPIRED:
            self.pending = None
        return state

    def _settle(self, *, paid: bool) -> None:
        self.pending = None
        if paid:
            self.cart.clear()
            self.keypad.press("clear")

    # -- plumbing ------------------------------------------------------------------------
    def _refuse_when_locked(self) -> bool:
        if self.locked:
            self.tell("waiting", error=True)
        return self.locked

    def tell(self, key: str, *, error: bool = False, **values: object) -> None:
        self.notice = Notice(key, tuple(values.items()), error)

    def _cart_changed(self) -> None:
        self._emit({"type": "cart", "total_fen": self.cart.total_fen,
                    "lines": [display_line(line, self.lang) for line in self.cart.lines]})

    def _emit(self, message: dict[str, Any]) -> None:
        self.display.apply(message, self._clock_ms())
        try:
            self._send(message)
        except OSError:
            log.warning("customer display is not reachable; it will catch up on reconnect")
