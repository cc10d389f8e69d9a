"""Cart and catalogue: the arithmetic and the vendor's price edits, without a window."""

from __future__ import annotations

import json
import os

import pytest

from pos_terminal import DEFAULT_PRODUCTS, Cart, CartError, Product, load_catalogue, save_catalogue

CABBAGE = Product("cabbage", "Chinese cabbage", "大白菜", "500g", 150, "#8BC34A", "L1", "Shandong")
CHICKEN = Product("chicken", "Whole chicken", "整鸡", "kg", 3200, "#FFCC80")
TOFU = Product("tofu", "Tofu", "豆腐", "piece", 350, "#FFF9C4")


def test_weighed_line_rounds_half_up_to_the_fen():
    cart = Cart()
    line = cart.add(CABBAGE, weight_g=1234)  # 150 fen / 500 g * 1234 g = 370.2
    assert line.amount_fen == 370
    assert cart.add(CHICKEN, weight_g=1505).amount_fen == 4816  # 3200 * 1.505 = 4816.0
    assert cart.add(CABBAGE, weight_g=5).amount_fen == 2  # 1.5 rounds half up
    assert cart.total_fen == 370 + 4816 + 2


def test_piece_line_defaults_to_one_and_ignores_weight():
    cart = Cart()
    line = cart.add(TOFU)
    assert (line.quantity, line.weight_g, line.amount_fen) == (1, None, 350)
    assert cart.add(TOFU, quantity=3, weight_g=999).amount_fen == 1050


def test_typed_price_overrides_the_quick_key():
    cart = Cart()
    assert cart.add(CABBAGE, weight_g=1000, unit_price_fen=120).amount_fen == 240


def test_update_remove_clear():
    cart = Cart()
    cart.add(CABBAGE, weight_g=1000)
    cart.add(TOFU, quantity=2)
    assert cart.update(0, weight_g=2000).amount_fen == 600
    assert cart.update(1, unit_price_fen=300).amount_fen == 600
    assert cart.lines[1].quantity == 2
    assert cart.total_fen == 1200
    removed = cart.remove(0)
    assert removed.product.code == "cabbage"
    assert [line.product.code for line in cart.lines] == ["tofu"]
    cart.clear()
    assert cart.total_fen == 0 and not cart


@pytest.mark.parametrize("kwargs, message", [
    ({}, "sold by weight"),
    ({"weight_g": 0}, "weight must be"),
    ({"weight_g": -5}, "weight must be"),
    ({"weight_g": 1.5}, "whole number"),
    ({"weight_g": True}, "whole number"),
    ({"weight_g": 100, "unit_price_fen": -1}, "unit price must be"),
    ({"weight_g": 20_000_000}, "weight must be"),
])
def test_bad_lines_are_refused_with_a_reason(kwargs, message):
    cart = Cart()
    with pytest.raises(CartError, match=message):
        cart.add(CABBAGE, **kwargs)
    assert cart.lines == ()


def test_bad_index_is_refused():
    cart = Cart()
    cart.add(TOFU)
    with pytest.raises(CartError, match="no cart line 3"):
        cart.update(3, quantity=2)
    with pytest.raises(CartError, match="no cart line -1"):
        cart.remove(-1)


def test_line_records_satisfy_the_sale_schema_rule():
    from market_protocol import line_amount_fen

    cart = Cart()
    cart.add(CABBAGE, weight_g=777)
    record = cart.to_records()[0]
    assert record["lot"] == "L1" and record["origin"] == "Shandong"
    assert record["amount_fen"] == line_amount_fen("500g", 150, weight_g=777)


@pytest.mark.parametrize("changes, message", [
    ({"unit": "litre"}, "unit"),
    ({"colour": "green"}, "colour"),
    ({"unit_price_fen": -1}, "unit_price_fen"),
    ({"code": "bad code"}, "product code"),
])
def test_product_validation(changes, message):
    fields = CABBAGE.to_dict() | changes
    with pytest.raises(ValueError, match=message):
        Product(**fields)


def test_catalogue_defaults_then_saved_prices_survive(tmp_path):
    products = load_catalogue(tmp_path)
    assert products == list(DEFAULT_PRODUCTS)
    assert all(p.lot and p.origin for p in products)
    products[0] = products[0].with_price(199)
    save_catalogue(tmp_path, products)
    again = load_catalogue(tmp_path)
    assert again[0].unit_price_fen == 199
    assert again[0].name_zh == products[0].name_zh
    assert not any(name.endswith(".tmp") for name in os.listdir(tmp_path))


def test_damaged_catalogue_fails_loudly(tmp_path):
    (tmp_path / "catalogue.json").write_text("[{\"code\": \"x\"")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_catalogue(tmp_path)
    (tmp_path / "catalogue.json").write_text(json.dumps([CABBAGE.to_dict(), CABBAGE.to_dict()]))
    with pytest.raises(ValueError, match="duplicate"):
        load_catalogue(tmp_path)
    (tmp_path / "catalogue.json").write_text(json.dumps([CABBAGE.to_dict() | {"x": 1}]))
    with pytest.raises(ValueError, match="unknown product field"):
        load_catalogue(tmp_path)
