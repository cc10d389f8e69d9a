"""Scale refusals and service errors reach the vendor in Chinese and English, through the
one strings table, from the real scales, cart and terminal (no window)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from market_protocol import PAYMENT_RESULT_SCHEMA, mac_record
from pos_terminal.catalogue import DEFAULT_PRODUCTS
from pos_terminal.scales import ManualScale, ScaleError, SimulatedScale, take_weight
from pos_terminal.terminal import Terminal
from pos_terminal.testing import enrol_offline
from pos_terminal.ui.messages import Notice, scale_notice, service_notice
from pos_terminal.ui.strings import STRINGS
from pos_terminal.ui.vendor_model import VendorScreenModel

SCALES_DIR = Path(__file__).parents[1] / "pos_terminal" / "scales"


def refusal(action) -> ScaleError:
    with pytest.raises(ScaleError) as caught:
        action()
    return caught.value


def test_every_scale_message_code_has_both_languages():
    source = "\n".join(path.read_text() for path in SCALES_DIR.glob("*.py"))
    codes = set(re.findall(r"code=\"(scale_\w+)\"", source))
    codes |= set(re.findall(r"default_code = \"(scale_\w+)\"", source))
    assert len(codes) >= 10
    assert codes <= set(STRINGS), codes - set(STRINGS)


def test_simulated_scale_refusals_in_both_languages():
    scale = SimulatedScale()
    scale.place(300, settle=False)
    moving = scale_notice(refusal(lambda: take_weight(scale)))
    assert moving.key == "scale_unstable" and moving.error
    assert moving.render("zh") == "秤: 重量还在变动, 请等稳定"
    assert moving.render("en") == "Scale: still moving, wait until it settles"
    scale.place(20)
    light = scale_notice(refusal(lambda: take_weight(scale)))
    assert light.render("zh") == "秤: 20 克低于最小称量 40 克"
    assert light.render("en") == "Scale: 20 g is below the minimum of 40 g"
    scale.place(1000)
    far = scale_notice(refusal(scale.zero))  # a kilo on the platter is not zero
    scale.place(0)
    empty = scale_notice(refusal(scale.tare))
    assert (far.key, empty.key) == ("scale_far_from_zero", "scale_nothing_to_tare")
    assert empty.render("en") == "Nothing on the platter to tare"
    scale.place(20_000)
    assert scale_notice(refusal(lambda: take_weight(scale))).render("zh") == "秤: 超出量程"


def test_manual_scale_and_an_unknown_fault_keep_their_detail():
    assert scale_notice(refusal(ManualScale().tare)).render("zh") == "手输重量不能去皮, 请输入净重"
    odd = scale_notice(ScaleError("something odd", code="scale_not_in_the_table"))
    assert odd.render("zh") == "秤: something odd"
    fault = scale_notice(ScaleError("bad frame", code="scale_below_minimum"))  # no values
    assert fault.key == "scale_refused"


def test_a_scale_refusal_on_a_key_tap_rerenders_on_language_switch(tmp_path):
    scale = SimulatedScale()
    scale.place(500, settle=False)
    model = VendorScreenModel(list(DEFAULT_PRODUCTS), object(),
                              scale_weight_g=lambda: take_weight(scale))
    model.tap_product("tomato")
    assert model.notice_text() == "秤: 重量还在变动, 请等稳定" and not model.cart
    model.toggle_language()
    assert model.notice_text() == "Scale: still moving, wait until it settles"


@pytest.fixture
def terminal(tmp_path):
    enrol_offline(tmp_path, "T-MSG-1")
    term = Terminal.open(tmp_path)
    yield term
    term.close()


def test_terminal_and_cart_errors_in_both_languages(terminal):
    model = VendorScreenModel(list(DEFAULT_PRODUCTS), terminal, lang="en")
    model.tap_product("tofu")
    charged = model.charge()
    # a paid sale cannot be voided: say so in the screen's words
    result = {"schema": PAYMENT_RESULT_SCHEMA, "payment_id": "p1",
              "device_id": terminal.device_id, "seq": charged.seq, "status": "paid",
              "amount_fen": charged.total_fen, "currency": "CNY", "channel": "sandbox",
              "channel_txn_id": None, "trace_code": None, "updated_at_ms": 1, "mac": ""}
    result["mac"] = mac_record(result, terminal.device_key)
    terminal.outbox.record_result(result)
    with pytest.raises(Exception) as caught:
        terminal.void(charged.sale_id)
    notice = service_notice("void_failed", caught.value)
    assert notice.render("zh") == "已付款的不能作废, 请退款"
    assert notice.render("en") == "This sale is paid: refund it instead"
    with pytest.raises(Exception) as too_much:
        terminal.request_refund(charged.sale_id, charged.total_fen + 1, "quality")
    assert service_notice("refund_failed", too_much.value).render("zh") == \
        f"最多可退 ¥{charged.total_fen // 100}.{charged.total_fen % 100:02d}"


def test_unknown_service_errors_keep_their_text_in_a_translated_frame():
    notice = service_notice("charge_failed", RuntimeError("disk full"))
    assert notice == Notice("charge_failed", (("reason", "disk full"),), True)
    assert notice.render("zh") == "收款失败: disk full"
