"""Cash, mixed tender, change and 抹零 on the terminal: the arithmetic, the sale record the
terminal MACs, the QR amount, the day's Z report and the receipt."""

from __future__ import annotations

import pytest

from market_protocol import SchemaError, check_sale, verify_record_mac
from pos_terminal import DEFAULT_PRODUCTS, Cart, Terminal, TerminalError
from pos_terminal.counter import Counter
from pos_terminal.day_report import day_summary
from pos_terminal.receipt import receipt_bytes
from pos_terminal.sale_record import sale_payload
from pos_terminal.stall_settings import StallSettings
from pos_terminal.tender import TenderError, round_down, settle
from pos_terminal.testing import enrol_offline
from pos_terminal.voice import Announcer


@pytest.mark.parametrize(("fen", "rule", "taken"), [
    (1287, "none", 0), (1287, "jiao", 7), (1287, "yuan", 87), (1280, "jiao", 0),
    (1200, "yuan", 0), (80, "yuan", 0), (7, "jiao", 0), (1, "yuan", 0),
])
def test_rounding_goes_down_to_the_jiao_or_yuan_but_never_to_nothing(fen, rule, taken):
    assert round_down(fen, rule) == taken


def test_cash_mixed_and_change():
    cash = settle(1287, rounding="jiao", all_cash=True, received_fen=2000)
    assert (cash.kind, cash.total_fen, cash.cash_fen, cash.qr_fen, cash.change_fen) == \
        ("cash", 1280, 1280, 0, 720)
    assert cash.record() == {"cash_fen": 1280, "rounding_fen": 7, "received_fen": 2000}
    mixed = settle(1287, cash_fen=500, received_fen=500)
    assert (mixed.kind, mixed.total_fen, mixed.qr_fen, mixed.change_fen) == \
        ("mixed", 1287, 787, 0)
    plain = settle(1287)
    assert plain.kind == "qr" and plain.record() is None
    for bad in (dict(cash_fen=2000), dict(all_cash=True, received_fen=1000),
                dict(cash_fen=-1), dict(received_fen=100), dict(rounding="fen")):
        with pytest.raises(TenderError):
            settle(1287, **bad)


@pytest.fixture
def terminal(tmp_path):
    enrol_offline(tmp_path, "T-CASH", merchant_name="王家蔬菜")
    with Terminal.open(tmp_path) as term:
        yield term


def cart_of(weight_g=4290):
    cart = Cart()
    cart.add(DEFAULT_PRODUCTS[0], weight_g=weight_g)   # 1.50 / 斤 -> 12.87
    return cart


def test_a_cash_sale_is_paid_at_once_without_a_qr_and_announced(terminal):
    said = []
    counter = Counter(terminal, StallSettings(rounding="jiao"),
                      announcer=Announcer(play=lambda wav: said.append(wav) or True))
    cart = cart_of()
    tender = counter.settle(cart, all_cash=True, received_fen=5000)
    charged = counter.charge(cart, tender)
    assert charged.qr_text == "" and charged.qr_png is None
    record = charged.sale
    assert record["total_fen"] == 1280 and record["lines"][0]["amount_fen"] == 1287
    assert record["tender"] == {"cash_fen": 1280, "rounding_fen": 7, "received_fen": 5000}
    assert verify_record_mac(record, terminal.device_key) and check_sale(record) is record
    stored = terminal.sale(charged.sale_id)
    assert (stored.payment_status, stored.payment_channel) == ("paid", "cash")
    assert stored.state == "queued"  # still goes to the gateway like any other sale
    assert counter.announcer.wait_idle()
    assert counter.announcer.last_words == "现金收款十二点八元" and len(said) == 1
    counter.close()


def test_a_mixed_sale_shows_a_qr_for_what_cash_left(terminal):
    cart = cart_of()
    charged = terminal.charge(cart, tender=settle(cart.total_fen, cash_fen=500,
                                                  received_fen=1000))
    assert charged.sale["total_fen"] == 1287
    assert sale_payload(charged.sale).amount_fen == 787
    assert charged.qr_text.startswith("http")
    assert terminal.sale(charged.sale_id).payment_status is None  # waits for the QR part


def test_a_tender_counted_for_another_cart_is_refused(terminal):
    tender = settle(1287, all_cash=True)
    with pytest.raises(TerminalError, match="settle again"):
        terminal.charge(cart_of(1000), tender=tender)
    assert terminal.today_sales() == []


def test_the_schema_holds_the_arithmetic():
    record = {"schema": "tracepay.sale/1", "sale_id": "T.1.aa", "device_id": "T", "seq": 1,
              "created_at_ms": 1, "currency": "CNY", "total_fen": 1280,
              "lines": [{"product_code": "c", "name": "c", "unit": "500g",
                         "unit_price_fen": 150, "weight_g": 4290, "quantity": None,
                         "amount_fen": 1287}],
              "qr_issued_at": 0, "qr_nonce": "00" * 8, "key_version": 1,
              "tender": {"cash_fen": 1280, "rounding_fen": 7}, "mac": "0" * 64}
    check_sale(record)
    for change, where in ((dict(rounding_fen=8), "total_fen"), (dict(cash_fen=1281), "cash_fen"),
                          (dict(received_fen=1000), "received_fen"),
                          (dict(rounding_fen=100), "rounding_fen")):
        with pytest.raises(SchemaError, match=where):
            check_sale({**record, "tender": {**record["tender"], **change}})


def test_z_report_and_receipt_split_cash_from_the_qr(terminal):
    cart = cart_of()
    cash = terminal.charge(cart, tender=settle(cart.total_fen, rounding="yuan", all_cash=True,
                                               received_fen=2000))
    mixed = terminal.charge(cart, tender=settle(cart.total_fen, cash_fen=500))
    from market_protocol import PAYMENT_RESULT_SCHEMA, mac_record

    result = {"schema": PAYMENT_RESULT_SCHEMA, "payment_id": "p2", "device_id": "T-CASH",
              "seq": mixed.seq, "status": "paid", "amount_fen": 787, "refunded_fen": 0,
              "currency": "CNY", "channel": "wechatpay", "channel_txn_id": "x",
              "trace_code": None, "updated_at_ms": 10**13, "mac": ""}
    result["mac"] = mac_record(result, terminal.device_key)
    terminal.outbox.record_result(result)
    summary = day_summary(terminal.today_sales(), day_ms=0)
    assert summary["paid"] == 2 and summary["paid_fen"] == 1200 + 1287
    assert summary["by_channel"] == {"cash": {"count": 2, "fen": 1700},
                                     "wechatpay": {"count": 1, "fen": 787}}
    assert summary["rounding_fen"] == 87
    stream = receipt_bytes(terminal.sale(cash.sale_id), stall="王家蔬菜", device_id="T-CASH")
    text = stream.decode("gb18030", errors="replace")
    assert "抹零 Rounding" in text and "-0.87" in text
    assert "找零 Change" in text and "8.00" in text
    mixed_text = receipt_bytes(terminal.sale(mixed.sale_id), stall="S",
                               device_id="T-CASH").decode("gb18030", errors="replace")
    assert "现金 Cash" in mixed_text and "微信 wechatpay" in mixed_text and "7.87" in mixed_text


def test_the_gateways_cash_result_supersedes_the_local_one_whatever_the_clocks(terminal):
    from market_protocol import PAYMENT_RESULT_SCHEMA

    cart = cart_of()
    charged = terminal.charge(cart, tender=settle(cart.total_fen, all_cash=True))
    # The gateway's clock is behind the terminal's: its result is stamped before the sale.
    result = {"schema": PAYMENT_RESULT_SCHEMA, "payment_id": "c" + "0" * 24,
              "device_id": "T-CASH", "seq": charged.seq, "status": "paid",
              "amount_fen": charged.total_fen, "refunded_fen": 0, "currency": "CNY",
              "channel": "cash", "channel_txn_id": charged.sale_id, "trace_code": None,
              "updated_at_ms": charged.sale["created_at_ms"] - 60_000}
    stored, changed = terminal.outbox.record_result(result)
    assert stored.payment_id == "c" + "0" * 24 and not changed  # same status: no new event


def test_a_cash_sale_is_stored_paid_in_the_same_transaction_as_the_sale(terminal, tmp_path):
    from pos_terminal.outbox import OUTBOX_FILE, Outbox

    def power_cut(sale):
        raise RuntimeError("power cut right after the commit")

    terminal._paid_in_cash = power_cut
    cart = cart_of()
    with pytest.raises(RuntimeError, match="power cut"):
        terminal.charge(cart, tender=settle(cart.total_fen, all_cash=True))
    reopened = Outbox(tmp_path / OUTBOX_FILE)
    try:
        [sale] = reopened.since(0)
        assert (sale.payment_status, sale.payment_channel) == ("paid", "cash")
    finally:
        reopened.close()
