"""Catalogue: synonyms resolve to one code; GTINs are checked."""

from __future__ import annotations

import pytest

from ledger_bridge.catalogue import DEFAULT_ENTRIES, Catalogue, CatalogueEntry, check_gtin, gtin14


def test_synonyms_in_any_case_or_script_resolve_to_one_code():
    catalogue = Catalogue.of(DEFAULT_ENTRIES)
    assert catalogue.resolve("大白菜") == "cabbage"
    assert catalogue.resolve("cab-01") == "cabbage"
    assert catalogue.resolve("X-9", "Napa Cabbage") == "cabbage"
    assert catalogue.resolve("Durian") == "durian"


def test_a_synonym_cannot_name_two_products():
    catalogue = Catalogue.of(DEFAULT_ENTRIES)
    with pytest.raises(ValueError, match="already names product 'cabbage'"):
        catalogue.add(CatalogueEntry("kale", "Kale", ("baicai",)))


def test_replacing_an_entry_drops_its_old_synonyms():
    catalogue = Catalogue.of([CatalogueEntry("kale", "Kale", ("curly",))])
    catalogue.add(CatalogueEntry("kale", "Kale", ("green",)))
    assert catalogue.resolve("curly") == "curly" and catalogue.resolve("green") == "kale"


def test_gtin_check_digit_and_padding():
    assert check_gtin("6901234567892") and not check_gtin("6901234567891")
    assert gtin14("6901234567892") == "06901234567892"
    with pytest.raises(ValueError):
        CatalogueEntry("x", "X", gtin="123")


def test_from_dict_refuses_unknown_fields():
    with pytest.raises(ValueError, match="unknown catalogue field"):
        CatalogueEntry.from_dict({"code": "x", "name": "X", "colour": "red"})
