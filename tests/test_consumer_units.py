"""Pure parts of the consumer app: language choice, catalogue, QR SVG, trace shaping."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from consumer_app.i18n import LANGS, TRANSLATIONS_DIR, catalog, choose_lang, translate
from consumer_app.qr_svg import qr_svg
from consumer_app.trace_view import (
    build_timeline,
    collect_recalls,
    format_quantity,
    proof_rows,
    published_keys,
    record_lines,
)
from service_base.catalogs import po_messages, stale_catalogs

TEMPLATES = Path(__file__).resolve().parents[1] / "consumer_app" / "templates"


@pytest.mark.parametrize(("query", "header", "expected"), [
    ("en", "zh-CN,zh;q=0.9", "en"),
    ("zh", "en-US", "zh"),
    ("fr", "en-GB,en;q=0.8", "en"),
    (None, "zh-CN,zh;q=0.9,en;q=0.8", "zh"),
    (None, "fr-FR,en;q=0.5,zh;q=0.4", "en"),
    (None, "en;q=0.2,zh-TW;q=0.7", "zh"),
    (None, "en;q=0", "zh"),
    (None, "de", "zh"),
    (None, None, "zh"),
    (None, "en;q=abc, zh", "zh"),
])
def test_language_choice_follows_query_then_header_then_default(query, header, expected):
    assert choose_lang(query, header, "zh") == expected


def test_default_language_is_configurable():
    assert choose_lang(None, None, "en") == "en"
    assert choose_lang(None, None, "xx") == "zh"


def _po(lang):
    path = TRANSLATIONS_DIR / lang / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as file:
        return read_po(file)


def test_every_catalogue_entry_has_both_languages():
    zh, en = _po("zh"), _po("en")
    keys = {m.id for m in zh if m.id}
    assert keys and keys == {m.id for m in en if m.id}, "the catalogs name different keys"
    for key in keys:
        assert zh[key].string.strip() and en[key].string.strip(), key
        assert zh[key].string != en[key].string, f"{key} is not translated"
        assert not zh[key].fuzzy and not en[key].fuzzy, f"{key} is marked fuzzy"
    assert translate("verify_ok", "en") == "Verified"
    assert translate("verify_bad", "en") == "Tampered"
    assert translate("verify_ok", "zh") == "已验证"


def test_the_compiled_catalogs_are_the_po_files():
    """The .mo files the app loads are compiled from the .po files translators edit."""
    assert stale_catalogs(TRANSLATIONS_DIR, LANGS) == [], (
        "stale messages.mo: run pybabel compile -d consumer_app/translations")
    for lang in LANGS:
        assert catalog(lang) == po_messages(TRANSLATIONS_DIR, lang)


def test_every_key_the_templates_use_is_in_the_catalogue():
    used = set()
    for template in TEMPLATES.glob("*.html"):
        used |= set(re.findall(r"\bt\('([a-z_]+)'\)", template.read_text(encoding="utf-8")))
    assert used, "no t('...') calls found: the pattern is stale"
    missing = sorted(used - set(catalog("zh")))
    assert not missing, f"keys used in templates but not translated: {missing}"


def test_unknown_key_fails_loudly():
    with pytest.raises(KeyError):
        translate("no_such_key", "zh")


def test_qr_svg_is_one_small_path_with_a_quiet_zone():
    svg = qr_svg("http://127.0.0.1:8400/trace/abcdefghijkl", title="abcdefghijkl")
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert svg.count("<path") == 1
    assert 'aria-label="abcdefghijkl"' in svg
    assert len(svg) < 6000
    size = int(re.search(r'viewBox="0 0 (\d+) \1"', svg).group(1))
    assert size >= 21 + 8  # a version-1 code plus a 4-module border on each side
    with pytest.raises(ValueError):
        qr_svg("")


def test_qr_svg_escapes_its_label():
    assert '"<' not in qr_svg("x", title='a"<b')
    assert "a&quot;&lt;b" in qr_svg("x", title='a"<b')


@pytest.mark.parametrize(("grams", "pieces", "text"), [
    (1250, None, "1.25 kg"), (1000, None, "1 kg"), (350, None, "350 g"), (1001, None, "1.001 kg"),
    (None, 3, "3 ×"), (None, None, ""), (True, None, ""),
])
def test_quantities_read_naturally(grams, pieces, text):
    assert format_quantity(grams, pieces) == text


# The shapes below are those of ledger_bridge.public_view / ledger_bridge.tracing.
RECORD = {
    "schema": "tracepay.trade_public/1", "trade_id": "s1.7.ab", "trace_code": "abcdefghijkl",
    "seller": {"merchant_id": "stall-7", "name": "Li's greens", "org": "retail_market"},
    "buyer": {"kind": "shopper"}, "sold_at_ms": 1_763_700_000_000,
    "confirmed_at_ms": 1_763_700_005_000,
    "lines": [{"line": 0, "lot_id": "abcdefghijkl:0", "product": "cabbage", "name": "Cabbage",
               "unit": "jin", "measure": "g", "amount": 1250, "weight_g": 1250,
               "quantity": None, "lot": None, "origin": "Shouguang"}],
}
CHAIN = [
    {"depth": 1, "lot_id": "w1:0", "trade_id": "w1", "trace_code": "wwwwwwwwwwww",
     "sold_at_ms": 1_763_600_000_000,
     "seller": {"merchant_id": "wh-1", "name": "North wholesale", "org": "wholesale_market"},
     "buyer": {"merchant_id": "stall-7", "name": "Li's greens", "org": "retail_market"},
     "product": "cabbage", "name": "cabbage", "measure": "g", "amount": 20000,
     "remaining": 8000, "lot": "W-17", "origin": "Shouguang", "drawn": 1250,
     "for_lot_id": "abcdefghijkl:0", "unmatched": 0},
    {"depth": 2, "lot_id": "f1:0", "trade_id": "f1", "trace_code": "ffffffffffff",
     "sold_at_ms": 1_763_500_000_000,
     "seller": {"merchant_id": "farm-1", "name": "Green field co-op", "org": "production_base"},
     "buyer": {"merchant_id": "wh-1", "name": "North wholesale", "org": "wholesale_market"},
     "product": "cabbage", "name": "大白菜", "measure": "g", "amount": 500000,
     "remaining": 0, "lot": "F-2026-11-19", "origin": "Shouguang, Shandong", "drawn": 20000,
     "for_lot_id": "w1:0", "unmatched": 0,
     "rapid_tests": [{"lot_id": "f1:0", "result": "pass", "values": {"inhibition_pct": 12},
                      "tested_at_ms": 1_763_500_100_000, "inspector": "insp-1"}]},
]


def test_timeline_runs_farm_to_wholesale_to_stall():
    steps = build_timeline({"record": RECORD, "chain": CHAIN})
    assert [s["stage"] for s in steps] == ["production_base", "wholesale_market", "retail_market"]
    farm, wholesale, stall = steps
    assert farm["seller"] == "Green field co-op"
    assert farm["lines"][0]["name"] == "大白菜"
    assert farm["lines"][0]["quantity_text"] == "500 kg"
    assert farm["lines"][0]["drawn_text"] == "20 kg"
    assert farm["lines"][0]["origin"] == "Shouguang, Shandong"
    assert farm["lines"][0]["lot"] == "F-2026-11-19"
    assert farm["tests"][0]["result"] == "pass" and "inhibition_pct 12" in farm["tests"][0]["value"]
    assert wholesale["date_ms"] == 1_763_600_000_000
    assert stall["lines"][0]["quantity_text"] == "1.25 kg"
    assert stall["lines"][0]["lot"] == ""  # internal lot ids are not shown to shoppers


def test_lines_of_one_upstream_sale_are_one_step_and_tests_attach_by_lot():
    tomato = dict(CHAIN[1], lot_id="f1:1", name="西红柿", lot="F-T", rapid_tests=[])
    steps = build_timeline({"record": RECORD, "chain": [*CHAIN, tomato], "rapid_tests": [
        {"lot_id": "f1:1", "result": "fail", "values": {"x": 1}, "tested_at_ms": 5}]})
    farm = steps[0]
    assert len(steps) == 3
    assert [line["name"] for line in farm["lines"]] == ["大白菜", "西红柿"]
    assert sorted(test["result"] for test in farm["tests"]) == ["fail", "pass"]
    assert steps[1]["tests"] == [] and steps[2]["tests"] == []


def test_timeline_tolerates_missing_and_junk_fields():
    steps = build_timeline({"record": {"lines": "junk"}, "chain": [None, 3, {"seller": "x"}]})
    assert [s["stage"] for s in steps] == ["retail_market", "unknown"]
    assert build_timeline({}) == []


def test_recalls_come_from_failed_tests():
    recalls = collect_recalls({"recalls": [
        {"lot_id": "f1:0", "test_id": "t1", "result": "fail", "values": {"inhibition_pct": 62},
         "inspector": "insp-1", "tested_at_ms": 1_763_500_200_000, "reason": None}]})
    assert recalls == [{"lot": "f1:0", "product": "", "reason": "inhibition_pct 62",
                        "date_ms": 1_763_500_200_000}]
    named = collect_recalls({"chain": CHAIN, "recalls": [{"lot_id": "f1:0", "reason": "residue"}]})
    assert named == [{"lot": "F-2026-11-19", "product": "大白菜", "reason": "residue",
                      "date_ms": None}]
    assert collect_recalls({"recalls": None}) == []


def test_record_lines_read_nested_sale_lines():
    lines = record_lines({"sale": {"lines": [{"name": "Pork", "weight_g": 500, "amount_fen": 1800,
                                              "origin": "Jinhua"}]}})
    assert lines == [{"name": "Pork", "quantity_text": "500 g", "origin": "Jinhua", "lot": "",
                      "amount_fen": 1800}]
    assert record_lines({"lines": [{"name": "Egg", "quantity": 6, "lot": "E-1"}]})[0][
        "quantity_text"] == "6 ×"


def test_proof_rows_name_the_block():
    rows = proof_rows({"proofs": [{"leaf": {"kind": "trade", "record_id": "r1"}, "leaf_index": 2,
                                   "tree_size": 5, "block": {
                                       "header": {"height": 4, "merkle_root": "aa", "time_ms": 9},
                                       "block_hash": "bb",
                                       "signatures": [{"signer": "orderer", "sig": "x"}]}}]})
    assert rows == [{"record_id": "r1", "kind": "trade", "height": 4, "block_hash": "bb",
                     "merkle_root": "aa", "leaf_index": 2, "tree_size": 5, "time_ms": 9,
                     "signers": ["orderer"]}]


def test_published_keys_accept_the_usual_shapes():
    raw = "A" * 43
    assert published_keys({"orderer": raw, "retail_market": raw}) == {
        "orderer": raw, "retail_market": raw}
    assert published_keys({"keys": {"orderer": {"public_key_raw": raw}}}) == {"orderer": raw}
    assert published_keys({"nodes": [{"signer": "orderer", "raw": raw}]}) == {"orderer": raw}
    assert published_keys({"orderer": "-----BEGIN PUBLIC KEY-----", "x": 5}) == {}
    assert published_keys(None) == {}


def test_dates_are_shown_in_market_time():
    from zoneinfo import ZoneInfo

    from consumer_app.app import _format_ms

    moment = 1_763_700_000_000  # 2025-11-21 04:40 UTC
    assert _format_ms(moment, ZoneInfo("Asia/Shanghai")) == "2025-11-21 12:40"
    assert _format_ms(moment, ZoneInfo("UTC"), False) == "2025-11-21"
    assert _format_ms(None, ZoneInfo("UTC")) == "" and _format_ms(True, ZoneInfo("UTC")) == ""
