"""A payment code scanned while the sale's QR is on the display, through the vendor
screen's model and the real terminal, gateway and sandbox platform processes: the
screen says charging, waiting or declined, and the sale settles on the MACed result."""

from __future__ import annotations

from test_gateway_support import Platform, platform  # noqa: F401 - fixture
from test_terminal_payer_code import _code, gateway, terminal  # noqa: F401 - fixtures

from pos_terminal import Terminal
from pos_terminal.ui.display_model import Phase
from pos_terminal.ui.payer_code_scan import is_payer_code_scan, scan_payer_code
from pos_terminal.ui.strings import text
from pos_terminal.ui.vendor_model import VendorScreenModel


def _now(work) -> None:
    work()


def _screen(term: Terminal) -> VendorScreenModel:
    model = VendorScreenModel(term.catalogue(), term)
    term.on_result(lambda sale, result: model.payment_result(result))
    model.tap_product(term.catalogue()[9].code)  # tofu, counted
    assert model.charge() is not None and model.pending is not None
    return model


def test_a_code_scanned_on_the_qr_screen_pays_the_sale(terminal: Terminal,  # noqa: F811
                                                       platform: Platform) -> None:  # noqa: F811
    model = _screen(terminal)
    code = _code(platform, "pay")
    assert is_payer_code_scan(model, code)
    scan_payer_code(model, terminal, code, on_ui=_now, run=_now)
    assert model.notice is not None and model.notice.key == "payer_code_paid"
    assert model.pending is None  # the MACed result came back and settled the sale
    assert model.tick().phase == Phase.PAID
    assert not model.cart  # the next shopper starts afresh
    assert not is_payer_code_scan(model, _code(platform, "pay"))  # nothing waits now


def test_waiting_then_declined_codes_are_said_on_screen(terminal: Terminal,  # noqa: F811
                                                        platform: Platform) -> None:  # noqa: F811
    model = _screen(terminal)
    scan_payer_code(model, terminal, _code(platform, "password"), on_ui=_now, run=_now)
    assert model.notice.key == "payer_code_waiting" and not model.notice.error
    assert model.pending is not None  # still the shopper's to confirm
    cancelled_sale = model.pending.sale["sale_id"]
    model.cancel_charge()
    terminal.void(cancelled_sale)

    model = _screen(terminal)
    scan_payer_code(model, terminal, _code(platform, "decline"), on_ui=_now, run=_now)
    assert model.notice.key == "payer_code_declined" and model.notice.error
    shown = text(model.notice.key, "zh", **dict(model.notice.values))
    assert shown.startswith("扣款失败") and "declined" in shown
    assert model.pending is not None
    # Another code for the declined sale: still declined (the sale is rung up again).
    scan_payer_code(model, terminal, _code(platform, "pay"), on_ui=_now, run=_now)
    assert model.notice.key == "payer_code_declined" and model.pending is not None
    model.cancel_charge()

    model = _screen(terminal)
    scan_payer_code(model, terminal, "12345678901234567", on_ui=_now, run=_now)
    assert model.notice.key == "payer_code_refused" and model.notice.error  # no such code
    assert text(model.notice.key, "en", **dict(model.notice.values)).startswith(
        "Payment code refused: ")
