"""The vendor screen and customer display as pure view-models: no window, no Kivy."""

from __future__ import annotations

from pathlib import Path

import pytest

from market_protocol import SchemaError, check_sale, derive_device_key, split_qr_url, verify_token
from pos_terminal.cart import Cart
from pos_terminal.catalogue import DEFAULT_PRODUCTS
from pos_terminal.terminal import Terminal
from pos_terminal.testing import TEST_MASTER_KEY, enrol_offline
from pos_terminal.ui.display_model import CustomerDisplayModel, DisplayMessageError, Phase
from pos_terminal.ui.keypad import Keypad, KeypadMode
from pos_terminal.ui.strings import LANGUAGES, STRINGS, TRANSLATIONS_DIR, text
from pos_terminal.ui.vendor_model import QR_LIFETIME_MS, VendorScreenModel
from service_base.catalogs import po_messages, stale_catalogs

GATEWAY = "http://127.0.0.1:9"


class Charger:
    """The real terminal service (not started: no network), remembering what it charged."""

    def __init__(self, data_dir: Path) -> None:
        enrol_offline(data_dir, "stall-7", gateway_url=GATEWAY)
        self.terminal = Terminal.open(data_dir)
        self.sales: list[dict] = []

    def charge(self, cart: Cart, *, render_png: bool = True):
        charged = self.terminal.charge(cart, render_png=render_png)
        self.sales.append(charged.sale)
        return charged


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000_000

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def rig(tmp_path: Path):
    clock = Clock()
    sent: list[dict] = []
    saved: list[list] = []
    charger = Charger(tmp_path)
    model = VendorScreenModel(list(DEFAULT_PRODUCTS), charger, send_to_display=sent.append,
                              save_products=saved.append, clock_ms=clock)
    return model, sent, saved, charger, clock


def type_digits(model: VendorScreenModel, digits: str) -> None:
    for key in digits:
        assert model.press_key(key), key


# -- strings -------------------------------------------------------------------------------
def test_every_string_has_every_language_and_the_same_placeholders():
    for key, table in STRINGS.items():
        assert set(table) == set(LANGUAGES), key
        assert all(table[lang].strip() for lang in LANGUAGES), key
        fields = [sorted(part.split("}")[0] for part in table[lang].split("{")[1:])
                  for lang in LANGUAGES]
        assert fields[0] == fields[1], key


def test_the_screens_words_come_from_fresh_gettext_catalogs():
    assert stale_catalogs(TRANSLATIONS_DIR, LANGUAGES) == [], (
        "stale messages.mo: run pybabel compile -d pos_terminal/ui/translations")
    for lang in LANGUAGES:
        source = po_messages(TRANSLATIONS_DIR, lang)
        assert len(source) > 100 and {key: STRINGS[key][lang] for key in source} == source


def test_text_fills_placeholders_and_refuses_unknown_keys_and_languages():
    assert text("outbox", "en", queued=3, sent=9) == "Queued 3 · Sent 9"
    assert text("charge", "zh") == "收款"
    with pytest.raises(KeyError):
        text("chrage", "en")
    with pytest.raises(ValueError, match="unknown language"):
        text("charge", "fr")


# -- keypad --------------------------------------------------------------------------------
def test_keypad_weight_takes_whole_grams_only():
    pad = Keypad()
    for key in "350":
        assert pad.press(key)
    assert not pad.press(".")
    assert pad.take() == 350
    assert pad.buffer == ""
    assert pad.take() is None


def test_keypad_price_takes_yuan_with_two_decimals_at_most():
    pad = Keypad(mode=KeypadMode.PRICE)
    for key in "3.5":
        assert pad.press(key)
    assert pad.press("0")
    assert not pad.press("1")  # a third decimal
    assert not pad.press(".")  # a second point
    assert pad.value_or_none() == 350


def test_keypad_refuses_leading_zeros_and_out_of_range_values():
    pad = Keypad()
    assert pad.press("0")
    assert not pad.press("0")
    assert not pad.press("5")
    assert pad.value_or_none() is None  # zero grams is no weight
    pad.press("clear")
    for key in "1000000":
        assert pad.press(key)
    assert not pad.press("0")  # 10 tonnes
    pad.press("back")
    assert pad.buffer == "100000"
    with pytest.raises(ValueError, match="unknown keypad key"):
        pad.press("x")
    with pytest.raises(ValueError, match="unknown keypad mode"):
        pad.set_mode("volume")


# -- ring-up -------------------------------------------------------------------------------
def test_typed_weight_then_key_adds_a_priced_line_and_updates_the_display(rig):
    model, sent, *_ = rig
    type_digits(model, "350")
    model.tap_product("tomato")  # ¥4.00 per 500 g
    assert [(line.product.code, line.weight_g, line.amount_fen) for line in model.cart.lines] \
        == [("tomato", 350, 280)]
    assert model.total_fen == 280
    assert sent[-1] == {"type": "cart", "total_fen": 280, "lines": [
        {"name": "西红柿", "detail": "350 克 × ¥4.00/斤", "amount_fen": 280}]}
    assert model.display.state.phase == Phase.ITEMS


def test_weighed_key_without_weight_asks_for_one_and_adds_nothing(rig):
    model, sent, *_ = rig
    model.tap_product("cabbage")
    assert len(model.cart) == 0
    assert model.notice.error and model.notice_text() == "请输入重量"
    assert sent == [{"type": "lang", "lang": "zh"}]  # only the opening language


def test_scale_weight_is_used_when_nothing_was_typed(tmp_path):
    model = VendorScreenModel(list(DEFAULT_PRODUCTS), Charger(tmp_path),
                              scale_weight_g=lambda: 1234)
    model.tap_product("chicken")  # ¥32.00 per kg
    assert model.cart.lines[0].weight_g == 1234
    assert model.total_fen == 3949  # 3948.8 rounded half-up


def test_piece_key_defaults_to_one_and_takes_a_typed_quantity(rig):
    model, *_ = rig
    model.tap_product("tofu")
    type_digits(model, "3")
    model.tap_product("tofu")
    assert [line.quantity for line in model.cart.lines] == [1, 3]
    assert model.total_fen == 350 * 4


def test_price_mode_overrides_the_unit_price_of_the_next_line_only(rig):
    model, *_ = rig
    model.set_mode(KeypadMode.PRICE)
    type_digits(model, "2.5")
    model.tap_product("tofu")
    model.tap_product("tofu")
    assert [line.unit_price_fen for line in model.cart.lines] == [250, 350]


def test_select_edit_and_delete_a_line(rig):
    model, sent, *_ = rig
    type_digits(model, "500")
    model.tap_product("cabbage")
    model.tap_product("tofu")
    model.select_line(0)
    assert model.keypad.mode == KeypadMode.WEIGHT
    type_digits(model, "1000")
    model.edit_line()
    assert model.cart.lines[0].weight_g == 1000 and model.cart.lines[0].amount_fen == 300
    model.select_line(1)
    assert model.keypad.mode == KeypadMode.QUANTITY
    type_digits(model, "2")
    model.edit_line()
    assert model.cart.lines[1].quantity == 2
    model.delete_line()
    assert [line.product.code for line in model.cart.lines] == ["cabbage"]
    assert sent[-1]["total_fen"] == 300
    model.delete_line()
    assert model.notice.key == "need_line" and len(model.cart) == 1
    with pytest.raises(IndexError):
        model.select_line(5)


def test_edit_without_a_number_changes_nothing(rig):
    model, *_ = rig
    type_digits(model, "500")
    model.tap_product("cabbage")
    model.select_line(0)
    model.edit_line()
    assert model.notice.key == "bad_number"
    assert model.cart.lines[0].weight_g == 500


def test_price_edit_mode_changes_the_key_and_saves_the_catalogue(rig):
    model, sent, saved, *_ = rig
    model.toggle_price_edit()
    assert model.keypad.mode == KeypadMode.PRICE
    type_digits(model, "1.8")
    model.tap_product("cabbage")
    assert model.product("cabbage").unit_price_fen == 180
    assert saved and next(p for p in saved[-1] if p.code == "cabbage").unit_price_fen == 180
    assert len(model.cart) == 0
    assert model.notice_text() == "大白菜 新价 ¥1.80/斤"
    model.tap_product("tomato")  # no price typed: refused, not set to zero
    assert model.product("tomato").unit_price_fen == 400
    model.toggle_price_edit()
    type_digits(model, "500")
    model.tap_product("cabbage")
    assert model.total_fen == 180


def test_the_display_starts_in_the_vendor_screens_language(tmp_path):
    sent: list[dict] = []
    model = VendorScreenModel(list(DEFAULT_PRODUCTS), Charger(tmp_path), lang="en",
                              send_to_display=sent.append)
    assert sent == [{"type": "lang", "lang": "en"}] and model.display.state.lang == "en"


def test_language_switch_rerenders_keys_notice_and_display(rig):
    model, sent, *_ = rig
    type_digits(model, "500")
    model.tap_product("cabbage")
    model.tap_product("potato")
    assert model.key_label(model.product("cabbage")) == "大白菜\n¥1.50/斤"
    model.toggle_language()
    assert model.lang == "en"
    assert model.key_label(model.product("cabbage")) == "Chinese cabbage\n¥1.50/500 g"
    assert model.notice_text() == "Enter a weight"
    assert sent[-2] == {"type": "lang", "lang": "en"}
    assert sent[-1]["lines"][0]["name"] == "Chinese cabbage"
    assert model.display.state.lang == "en"


# -- charging ------------------------------------------------------------------------------
def ring_up_two(model: VendorScreenModel) -> None:
    type_digits(model, "500")
    model.tap_product("cabbage")
    model.tap_product("tofu")


def test_charge_shows_a_verifiable_qr_and_locks_the_cart(rig):
    model, sent, _, charger, clock = rig
    ring_up_two(model)
    charged = model.charge()
    sale = check_sale(charger.sales[0])
    assert charged.sale is sale and sale["total_fen"] == 500
    message = sent[-1]
    assert message["type"] == "qr" and message["url"] == charged.qr_url
    base, token = split_qr_url(message["url"])
    payload = verify_token(token, derive_device_key(TEST_MASTER_KEY, "stall-7", 1), GATEWAY)
    assert (base, payload.amount_fen, payload.order_no) == (GATEWAY, 500, 1)
    assert message["expires_at_ms"] == sale["qr_issued_at"] * 1000 + QR_LIFETIME_MS
    assert charger.terminal.outbox_counts()["queued"] == 1  # in the outbox before the QR
    assert model.display.state.phase == Phase.QR
    model.tap_product("tofu")
    model.clear_cart()
    assert len(model.cart) == 2 and model.notice.key == "waiting"
    assert model.charge() is charged and len(charger.sales) == 1


def test_empty_cart_is_not_charged(rig):
    model, sent, _, charger, _ = rig
    assert model.charge() is None
    assert model.notice.key == "nothing_to_charge" and charger.sales == []


def paid(seq: int, status: str = "paid") -> dict:
    return {"seq": seq, "status": status}


def test_paid_result_clears_the_cart_and_a_stale_one_is_ignored(rig):
    model, sent, *_ = rig
    ring_up_two(model)
    model.charge()
    model.payment_result(paid(99))
    assert model.locked and model.display.state.phase == Phase.QR
    model.payment_result(paid(1, "pending"))
    assert model.locked
    model.payment_result(paid(1))
    assert not model.locked and len(model.cart) == 0
    assert sent[-1]["type"] == "result" and sent[-1]["status"] == "paid"
    assert model.display.state.phase == Phase.PAID


def test_failed_or_cancelled_charge_keeps_the_cart_for_another_try(rig):
    model, sent, _, charger, _ = rig
    ring_up_two(model)
    model.charge()
    model.payment_result(paid(1, "failed"))
    assert model.display.state.phase == Phase.FAILED and len(model.cart) == 2
    second = model.charge()
    assert second.sale["seq"] == 2
    assert model.cancel_charge() is second
    assert model.display.state.phase == Phase.CANCELLED and not model.locked
    assert sent[-1] == {"type": "cancel", "sale_id": second.sale["sale_id"]}
    assert model.cancel_charge() is None


def test_qr_expiry_unlocks_the_cart(rig):
    model, _, _, _, clock = rig
    ring_up_two(model)
    charged = model.charge()
    clock.now = charged.sale["qr_issued_at"] * 1000 + QR_LIFETIME_MS - 1000
    assert model.tick().phase == Phase.QR and model.locked
    clock.now += 1000
    assert model.tick().phase == Phase.EXPIRED and not model.locked


def test_display_link_failure_does_not_stop_ring_up(tmp_path):
    def unreachable(message: dict) -> None:
        raise ConnectionRefusedError("display is down")

    model = VendorScreenModel(list(DEFAULT_PRODUCTS), Charger(tmp_path),
                              send_to_display=unreachable)
    model.tap_product("tofu")
    assert model.total_fen == 350 and model.display.state.phase == Phase.ITEMS


def test_a_cart_the_sale_schema_refuses_is_reported_not_raised(rig):
    model, *_ = rig

    class Refusing:
        def charge(self, cart, **options):
            raise SchemaError("$.lines", "too many")

    model.terminal = Refusing()
    model.tap_product("tofu")
    assert model.charge() is None and model.notice.key == "charge_failed"
    assert not model.locked


# -- customer display ----------------------------------------------------------------------
def qr_message(sale_id: str = "s.1.x", expires: int = 10_000) -> dict:
    return {"type": "qr", "sale_id": sale_id, "url": "http://127.0.0.1:9/q/abc",
            "trace_code": "T1", "total_fen": 500, "expires_at_ms": expires,
            "lines": [{"name": "Tofu", "detail": "1 pc", "amount_fen": 500}]}


def test_display_goes_idle_items_qr_paid_then_idle_after_lingering():
    display = CustomerDisplayModel(linger_ms=5_000)
    assert display.state.phase == Phase.IDLE
    display.apply({"type": "cart", "total_fen": 500, "lines": qr_message()["lines"]}, 0)
    assert display.state.phase == Phase.ITEMS and display.state.total_fen == 500
    display.apply(qr_message(), 100)
    assert display.state.seconds_left(100) == 10
    display.apply({"type": "cart", "total_fen": 1, "lines": []}, 200)
    assert display.state.phase == Phase.QR  # the QR is not replaced by cart edits
    display.apply({"type": "result", "sale_id": "s.1.x", "status": "paid"}, 300)
    assert display.tick(5_299).phase == Phase.PAID
    assert display.tick(5_300).phase == Phase.IDLE


def test_display_expires_the_qr_by_itself_and_a_late_failure_does_not_override():
    display = CustomerDisplayModel()
    display.apply(qr_message(expires=1_000), 0)
    assert display.tick(999).phase == Phase.QR
    assert display.tick(1_000).phase == Phase.EXPIRED
    display.apply({"type": "result", "sale_id": "s.1.x", "status": "failed"}, 1_100)
    assert display.state.phase == Phase.EXPIRED
    display.apply({"type": "result", "sale_id": "s.1.x", "status": "paid"}, 1_200)
    assert display.state.phase == Phase.PAID  # the shopper's money was taken: say so


def test_display_ignores_results_and_cancels_for_other_sales():
    display = CustomerDisplayModel()
    display.apply(qr_message("s.2.y"), 0)
    display.apply({"type": "result", "sale_id": "s.1.x", "status": "paid"}, 1)
    display.apply({"type": "cancel", "sale_id": "s.1.x"}, 2)
    assert display.state.phase == Phase.QR
    display.apply({"type": "cancel", "sale_id": "s.2.y"}, 3)
    assert display.state.phase == Phase.CANCELLED


@pytest.mark.parametrize("message, reason", [
    ("qr", "JSON object"),
    ({"type": "launch"}, "unknown display message type"),
    ({"lang": "en"}, "unknown display message type"),
    ({"type": "lang", "lang": "fr"}, "unknown language"),
    ({"type": "cart", "lines": [{"name": "x"}], "total_fen": 1}, "bad cart line"),
    ({"type": "cart", "lines": "x", "total_fen": 1}, "needs 'lines'"),
    ({**qr_message(), "url": "javascript:alert(1)"}, "neither a URL"),
    ({**qr_message(), "expires_at_ms": True}, "needs 'expires_at_ms'"),
    ({"type": "result", "sale_id": "s", "status": "maybe"}, "unknown result status"),
])
def test_display_refuses_malformed_messages_and_keeps_its_state(message, reason):
    display = CustomerDisplayModel()
    display.apply(qr_message(), 0)
    with pytest.raises(DisplayMessageError, match=reason):
        display.apply(message, 1)
    assert display.state.phase == Phase.QR


def test_an_emv_terminal_puts_the_emvco_payload_on_the_display(tmp_path):
    from pos_terminal.provisioning import update_config

    charger = Charger(tmp_path)
    update_config(tmp_path, qr_format="emv")
    charger.terminal = Terminal.open(tmp_path)
    sent: list[dict] = []
    model = VendorScreenModel(list(DEFAULT_PRODUCTS), charger, send_to_display=sent.append)
    model.tap_product("tofu")
    charged = model.charge()
    assert sent[-1]["url"].startswith("000201") and sent[-1]["url"] == charged.qr_text
    assert model.display.state.phase == Phase.QR


def test_long_press_reprices_one_key_then_ring_up_goes_on(rig):
    model, _, saved, _, _ = rig
    model.long_press_product("tomato")
    assert model.price_for == "tomato" and model.keypad.mode == KeypadMode.PRICE
    assert model.notice_text().startswith("改价 西红柿")
    model.tap_product("tomato")  # nothing typed: refused, still re-pricing
    assert model.notice.key == "bad_number" and model.price_for == "tomato"
    type_digits(model, "4.5")
    model.tap_product("tomato")
    assert model.product("tomato").unit_price_fen == 450 and model.price_for is None
    assert saved[-1] and not model.cart and model.keypad.mode == KeypadMode.WEIGHT
    type_digits(model, "500")
    model.tap_product("tomato")
    assert model.cart.lines[0].amount_fen == 450


def test_long_press_then_another_key_cancels_without_a_line(rig):
    model, _, saved, _, _ = rig
    model.long_press_product("tomato")
    type_digits(model, "9")
    model.tap_product("cabbage")
    assert model.price_for is None and model.notice.key == "price_for_cancelled"
    assert not model.cart and not saved and model.keypad.buffer == ""
    assert model.product("tomato").unit_price_fen == 400
