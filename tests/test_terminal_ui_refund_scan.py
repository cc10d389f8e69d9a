"""Refund screen and barcode scans as view-models over the real terminal service (outbox,
refund queue) without a window; serial scans through a real pseudo-terminal."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from market_protocol import PAYMENT_RESULT_SCHEMA, mac_record
from pos_terminal.barcodes import ean13_check_digit
from pos_terminal.cart import Cart
from pos_terminal.catalogue import DEFAULT_PRODUCTS
from pos_terminal.terminal import Terminal
from pos_terminal.testing import enrol_offline
from pos_terminal.ui.plu import PLU_FILE, load_plu_table
from pos_terminal.ui.refund_model import PRESET_REASONS, RefundModel
from pos_terminal.ui.scan_input import WedgeBuffer, start_serial_reader
from pos_terminal.ui.strings import STRINGS, text
from pos_terminal.ui.vendor_model import VendorScreenModel
from service_base.testing import free_port


def ean(first12: str) -> str:
    return first12 + str(ean13_check_digit(first12))


@pytest.fixture
def terminal(tmp_path: Path):
    # a gateway address where nothing listens: refunds stay queued, like a stall offline
    enrol_offline(tmp_path, "T-REF-1", gateway_url=f"http://127.0.0.1:{free_port()}")
    term = Terminal.open(tmp_path)
    yield term
    term.close()


def paid_sale(term: Terminal, quantity: int = 4, refunded_fen: int = 0):
    cart = Cart()
    cart.add(DEFAULT_PRODUCTS[9], quantity=quantity)  # tofu, 3.50 each
    charged = term.charge(cart, render_png=False)
    result = {"schema": PAYMENT_RESULT_SCHEMA, "payment_id": "pay-1",
              "device_id": term.device_id, "seq": charged.seq,
              "status": "partially_refunded" if refunded_fen else "paid",
              "amount_fen": charged.total_fen, "currency": "CNY", "channel": "sandbox",
              "channel_txn_id": None, "trace_code": None, "updated_at_ms": 1,
              "refunded_fen": refunded_fen, "mac": ""}
    result["mac"] = mac_record(result, term.device_key)
    term.outbox.record_result(result)
    return term.sale(charged.sale_id)


def press(model, keys: str) -> None:
    for key in keys:
        assert model.press(key), key


# -- refunds -------------------------------------------------------------------------------

def test_every_preset_reason_has_a_label_in_both_languages():
    for reason in PRESET_REASONS:
        assert set(STRINGS[f"reason_{reason}"]) == {"zh", "en"}


def test_empty_amount_means_all_that_is_left_after_earlier_refunds(terminal):
    sale = paid_sale(terminal, quantity=4, refunded_fen=300)
    model = RefundModel(sale, terminal.request_refund)
    assert model.refundable_fen == 1400 - 300 == model.amount_fen()
    press(model, "2.5")
    assert model.amount_fen() == 250


def test_refund_needs_a_reason_and_at_most_what_is_left(terminal):
    sale = paid_sale(terminal, quantity=2, refunded_fen=200)
    model = RefundModel(sale, terminal.request_refund, lang="en")
    assert model.submit() is None and model.notice.key == "refund_need_reason"
    model.choose_reason("quality")
    press(model, "5.01")
    assert model.submit() is None and model.notice_text() == "At most ¥5.00 can be refunded"
    assert terminal.outbox.queued_requests() == []
    assert not model.press(".")  # a second decimal point is refused, and said so
    assert model.notice.key == "bad_number"


def test_a_reason_is_a_preset_free_words_or_both(terminal):
    model = RefundModel(paid_sale(terminal), terminal.request_refund)
    model.set_free_text("  bruised  ")
    assert model.reason_text() == "bruised"
    model.choose_reason("short_weight")
    assert model.reason_text() == "short_weight: bruised"
    model.choose_reason("short_weight")  # tapped again: off
    model.set_free_text("")
    assert model.reason_text() == ""
    with pytest.raises(ValueError):
        model.choose_reason("because")


def test_partial_refund_is_queued_linked_to_the_sale_then_shows_the_refunded_amount(terminal):
    sale = paid_sale(terminal, quantity=4)
    model = RefundModel(sale, terminal.request_refund)
    press(model, "3.5")
    model.choose_reason("wrong_item")
    outcome = model.submit()
    assert outcome["state"] == "queued" and outcome["refund_no"].startswith(sale.sale_id)
    [(_, kind, body)] = terminal.outbox.queued_requests()
    assert (kind, body["sale_id"], body["amount_fen"], body["reason"]) == \
        ("refund", sale.sale_id, 350, "wrong_item")
    assert model.status_text() == text("refund_state_queued", "zh", amount="¥3.50")
    assert model.submit() is outcome or model.submit() == outcome  # no second request
    assert len(terminal.outbox.queued_requests()) == 1
    # the gateway's result arrives: 3.50 refunded
    result = {"schema": PAYMENT_RESULT_SCHEMA, "payment_id": "pay-1",
              "device_id": terminal.device_id, "seq": sale.seq,
              "status": "partially_refunded", "amount_fen": 1400, "currency": "CNY",
              "channel": "sandbox", "channel_txn_id": None, "trace_code": None,
              "updated_at_ms": 5, "refunded_fen": 350, "mac": ""}
    terminal.outbox.record_result(result)
    model.update(terminal.sale(sale.sale_id), terminal.outbox.request(outcome["refund_no"]))
    model.lang = "en"
    assert model.status_text() == "Refund ¥3.50 queued: sent when online  ·  Refunded ¥3.50"
    assert model.refundable_fen == 1050


def test_refused_and_unpaid_sales(terminal):
    cart = Cart()
    cart.add(DEFAULT_PRODUCTS[9], quantity=1)
    unpaid = terminal.sale(terminal.charge(cart, render_png=False).sale_id)
    model = RefundModel(unpaid, terminal.request_refund)
    model.choose_reason("quality")
    assert not model.can_refund
    assert model.submit() is None and model.notice.key == "refund_not_paid"
    paid = paid_sale(terminal)
    failing = RefundModel(paid, lambda *args: (_ for _ in ()).throw(OSError("disk full")))
    failing.choose_reason("quality")
    assert failing.submit() is None and failing.notice.key == "refund_failed"
    assert "disk full" in failing.notice_text()
    shown = RefundModel(paid, lambda *a: {"refund_no": "r1", "state": "refused",
                                          "answer": '{"error": "too_late"}'}, lang="en")
    shown.choose_reason("quality")
    shown.submit()
    assert shown.status_text() == "Refund ¥14.00 refused by the gateway"  # all of it


# -- barcodes ------------------------------------------------------------------------------

@pytest.fixture
def ring(terminal):
    products = terminal.catalogue()
    model = VendorScreenModel(products, terminal, plu_table=load_plu_table(
        terminal.data_dir, products), lang="en")
    return model


def test_weight_label_adds_a_line_for_its_plu(ring):
    assert ring.scan_barcode(ean("250000300350"))  # PLU 00003 = tomato, 350 g
    [line] = ring.cart.lines
    assert (line.product.code, line.weight_g, line.amount_fen) == ("tomato", 350, 280)
    assert ring.notice_text() == "Scanned Tomato"


def test_price_label_on_a_piece_and_on_a_weighed_product(ring):
    assert ring.scan_barcode(ean("200001000420"))  # PLU 00010 = tofu, labelled 4.20
    assert ring.scan_barcode(ean("210000700900"))  # PLU 00007 = pork belly 18.00/500 g, 9.00
    tofu, pork = ring.cart.lines
    assert (tofu.quantity, tofu.unit_price_fen, tofu.amount_fen) == (1, 420, 420)
    assert (pork.product.code, pork.weight_g, pork.amount_fen) == ("pork-belly", 250, 900)


@pytest.mark.parametrize("code, key", [
    (ean("259999900350"), "barcode_unknown_plu"),
    ("2500003003509", "barcode_check_digit"),
    ("12345", "barcode_not_ean13"),
    (ean("250000300000"), "barcode_zero_weight"),
    (ean("690123456789"), "barcode_not_in_store"),  # a packaged GTIN
    (ean("250001000350"), "barcode_weight_on_piece"),  # tofu by weight
])
def test_bad_scans_say_why_and_add_nothing(ring, code, key):
    assert not ring.scan_barcode(code)
    assert ring.notice.key == key and ring.notice.error and not ring.cart
    if key == "barcode_unknown_plu":
        assert ring.notice_text() == "Unknown item code 99999"
    if key == "barcode_check_digit":
        ring.toggle_language()
        assert ring.notice_text() == "条码校验位不对, 请重扫"


def test_scans_are_refused_while_a_qr_is_up(ring):
    ring.scan_barcode(ean("250000300350"))
    ring.charge()
    assert not ring.scan_barcode(ean("250000300350"))
    assert ring.notice.key == "waiting" and len(ring.cart) == 1


def test_plu_table_from_the_data_dir_and_its_refusals(tmp_path):
    products = list(DEFAULT_PRODUCTS)
    assert load_plu_table(tmp_path, products)["00001"] == "cabbage"
    (tmp_path / PLU_FILE).write_text(json.dumps({"12345": "chicken"}))
    assert load_plu_table(tmp_path, products) == {"12345": "chicken"}
    (tmp_path / PLU_FILE).write_text(json.dumps({"123": "chicken"}))
    with pytest.raises(ValueError, match="five-digit"):
        load_plu_table(tmp_path, products)


def test_wedge_buffer_makes_lines_on_enter():
    wedge = WedgeBuffer()
    assert wedge.feed("2500003") == [] and wedge.pending == "2500003"
    assert wedge.feed("003503\r") == ["2500003003503"]
    assert wedge.feed("\r\n") == [] and wedge.feed("x" * 300) == []
    assert len(wedge.pending) <= 256  # noise without an Enter is bounded


def test_serial_reader_hands_over_whole_lines_from_a_real_tty():
    controller, device_fd = os.openpty()
    lines: list[str] = []
    stop = start_serial_reader(os.ttyname(device_fd), lines.append)
    try:
        os.write(controller, b"2500003003")
        os.write(controller, b"50x\r\nhttp://127.0.0.1:8/v1/enrolments/ABCD2345/claim\n")
        deadline = time.monotonic() + 10
        while len(lines) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop()
        os.close(controller)
        os.close(device_fd)
    assert lines == ["250000300350x", "http://127.0.0.1:8/v1/enrolments/ABCD2345/claim"]
