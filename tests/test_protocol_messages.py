"""Message schemas, canonical JSON, money and MACs: worked examples with exact answers."""

from __future__ import annotations

import copy

import pytest

from market_protocol import (
    SALE_SCHEMA,
    SchemaError,
    canonical_json,
    check_sale,
    format_fen,
    line_amount_fen,
    mac_record,
    parse_yuan,
    record_hash,
    trace_code_for_sale,
    verify_record_mac,
)
from market_protocol.canonical_json import CanonicalJSONError
from market_protocol.settings import Setting, SettingsError, load_settings

KEY = b"k" * 32


def sale() -> dict:
    record = {
        "schema": SALE_SCHEMA, "sale_id": "stall-1.7.ab12", "device_id": "stall-1", "seq": 7,
        "created_at_ms": 1_790_000_000_000, "currency": "CNY", "total_fen": 1150,
        "lines": [
            {"product_code": "cabbage", "name": "Cabbage", "unit": "500g",
             "unit_price_fen": 250, "weight_g": 1300, "quantity": None, "amount_fen": 650,
             "lot": "L-2026-11-20-01", "origin": "Shouguang"},
            {"product_code": "egg", "name": "Egg", "unit": "piece", "unit_price_fen": 50,
             "weight_g": None, "quantity": 10, "amount_fen": 500},
        ],
        "qr_issued_at": 1_790_000_000, "qr_nonce": "0011223344556677", "key_version": 1,
    }
    record["mac"] = mac_record(record, KEY)
    return record


def test_canonical_json_is_sorted_compact_utf8():
    assert canonical_json.dumps({"b": 1, "a": [True, None, "菜"]}) == \
        '{"a":[true,null,"菜"],"b":1}'.encode()


def test_canonical_json_refuses_floats_and_names_where():
    with pytest.raises(CanonicalJSONError, match=r"\$\.lines\[0\]\.price"):
        canonical_json.dumps({"lines": [{"price": 1.5}]})


@pytest.mark.parametrize(("unit", "price", "weight", "qty", "expected"), [
    ("500g", 250, 1300, None, 650),
    ("kg", 999, 1, None, 1),       # 0.999 fen rounds half-up to 1
    ("kg", 1000, 1, None, 1),
    ("kg", 500, 1, None, 1),       # exactly half a fen rounds up
    ("kg", 499, 1, None, 0),
    ("piece", 50, None, 10, 500),
])
def test_line_amounts_round_half_up(unit, price, weight, qty, expected):
    assert line_amount_fen(unit, price, weight_g=weight, quantity=qty) == expected


def test_money_formatting_and_parsing():
    assert format_fen(123456) == "¥1234.56"
    assert format_fen(-5) == "-¥0.05"
    assert parse_yuan("12.3") == 1230
    with pytest.raises(ValueError):
        parse_yuan("1.234")


def test_a_good_sale_passes_and_its_mac_verifies():
    record = sale()
    assert check_sale(record) is record
    assert verify_record_mac(record, KEY)
    assert not verify_record_mac(record, b"x" * 32)


def test_mac_covers_every_field():
    record = sale()
    record["lines"][0]["weight_g"] = 1301
    assert not verify_record_mac(record, KEY)


@pytest.mark.parametrize(("mutate", "path"), [
    (lambda r: r.pop("seq"), "$.seq"),
    (lambda r: r.update(seq=0), "$.seq"),
    (lambda r: r.update(total_fen=1151), "$.total_fen"),
    (lambda r: r["lines"][0].update(amount_fen=651), "$.lines[0]"),
    (lambda r: r.update(currency="XXX"), "$.currency"),
    (lambda r: r.update(extra=1), "$.extra"),
    (lambda r: r.update(lines=[]), "$.lines"),
    (lambda r: r.update(seq=True), "$.seq"),
])
def test_bad_sales_are_refused_naming_the_field(mutate, path):
    record = copy.deepcopy(sale())
    mutate(record)
    with pytest.raises(SchemaError) as error:
        check_sale(record)
    assert error.value.path == path


def test_record_hash_and_trace_code_are_deterministic():
    assert record_hash(sale()) == record_hash(copy.deepcopy(sale()))
    code = trace_code_for_sale("stall-1.7.ab12")
    assert code == trace_code_for_sale("stall-1.7.ab12")
    assert len(code) == 12 and code.isalnum() and code == code.lower()
    assert code != trace_code_for_sale("stall-1.8.ab12")


def test_settings_resolve_in_order_and_refuse_typos(tmp_path):
    declared = [Setting("port", 8000, "port", int), Setting("name", "x", "name")]
    config = tmp_path / "c.toml"
    config.write_text('[gateway]\nport = 9000\nname = "file"\n')
    resolved = load_settings(declared, "gateway", config_file=config,
                             environ={"TRACEPAY_GATEWAY_NAME": "env"}, overrides={"port": 9100})
    assert resolved == {"port": 9100, "name": "env"}
    config.write_text("[gateway]\nprot = 1\n")
    with pytest.raises(SettingsError, match="prot"):
        load_settings(declared, "gateway", config_file=config, environ={})
