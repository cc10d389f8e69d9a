"""Product catalogue: one code per product, whatever each vendor calls it.

A farm books "大白菜", the wholesaler "CAB-01", the stall "cabbage": mass balance only works
when all three land on the same product. Pure: the catalogue is a value; the bridge's store
persists the entries and rebuilds it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CatalogueEntry", "Catalogue", "DEFAULT_ENTRIES", "check_gtin", "gtin14"]

_CODE = re.compile(r"^[a-z0-9][a-z0-9_.:-]{0,63}$")


def _key(text: str) -> str:
    """Synonym lookup key: case, spaces, '_' and '-' do not make a different product."""
    return re.sub(r"[\s_\-]+", "", text.strip().casefold())


def _gtin_check_digit(body: str) -> int:
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return (10 - total % 10) % 10


def check_gtin(text: str) -> bool:
    """True when ``text`` is a GTIN-8/12/13/14 with a correct GS1 check digit."""
    if not (isinstance(text, str) and text.isdigit() and len(text) in (8, 12, 13, 14)):
        return False
    return _gtin_check_digit(text[:-1]) == int(text[-1])


def gtin14(text: str) -> str:
    """The GTIN zero-padded to 14 digits, the form GS1 Digital Link uses after ``/01/``."""
    if not check_gtin(text):
        raise ValueError(f"{text!r} is not a valid GTIN (8, 12, 13 or 14 digits, check digit)")
    return text.zfill(14)


@dataclass(frozen=True)
class CatalogueEntry:
    """``code`` is the bridge's product code; ``synonyms`` are other codes and names for it."""

    code: str
    name: str
    synonyms: tuple[str, ...] = ()
    gtin: str | None = None

    def __post_init__(self) -> None:
        if not _CODE.match(self.code):
            raise ValueError(f"product code {self.code!r}: use lower-case letters, digits, _ . : -")
        if not self.name or len(self.name) > 80:
            raise ValueError(f"product {self.code}: name must be 1-80 characters")
        if self.gtin is not None:
            object.__setattr__(self, "gtin", gtin14(self.gtin))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CatalogueEntry:
        unknown = sorted(set(data) - {"code", "name", "synonyms", "gtin"})
        if unknown:
            raise ValueError(f"unknown catalogue field(s): {', '.join(unknown)}")
        if "code" not in data or "name" not in data:
            raise ValueError("a catalogue entry needs 'code' and 'name'")
        synonyms = data.get("synonyms") or ()
        if not isinstance(synonyms, (list, tuple)) or not all(
                isinstance(s, str) and 0 < len(s) <= 80 for s in synonyms):
            raise ValueError("synonyms must be a list of 1-80 character strings")
        if not isinstance(data["code"], str) or not isinstance(data["name"], str):
            raise ValueError("code and name must be strings")
        gtin = data.get("gtin")
        if gtin is not None and not isinstance(gtin, str):
            raise ValueError("gtin must be a string of digits")
        return cls(data["code"], data["name"], tuple(synonyms), gtin)

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "name": self.name, "synonyms": list(self.synonyms),
                "gtin": self.gtin}


@dataclass
class Catalogue:
    """Resolves a trade line's product code or name to a catalogue code."""

    entries: dict[str, CatalogueEntry] = field(default_factory=dict)
    _index: dict[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def of(cls, entries: Iterable[CatalogueEntry]) -> Catalogue:
        catalogue = cls()
        for entry in entries:
            catalogue.add(entry)
        return catalogue

    def add(self, entry: CatalogueEntry) -> None:
        """Add or replace an entry. A synonym already naming another product is refused."""
        for word in (entry.code, entry.name, *entry.synonyms):
            owner = self._index.get(_key(word))
            if owner is not None and owner != entry.code:
                raise ValueError(f"{word!r} already names product {owner!r}")
        old = self.entries.get(entry.code)
        if old is not None:
            for word in (old.code, old.name, *old.synonyms):
                self._index.pop(_key(word), None)
        self.entries[entry.code] = entry
        for word in (entry.code, entry.name, *entry.synonyms):
            self._index[_key(word)] = entry.code

    def resolve(self, product_code: str, name: str | None = None) -> str:
        """The catalogue code for a line; an unknown product keeps its own code (lower case)."""
        for word in (product_code, name):
            if word:
                code = self._index.get(_key(word))
                if code is not None:
                    return code
        return product_code.strip().casefold()

    def gtin_of(self, code: str) -> str | None:
        entry = self.entries.get(code)
        return entry.gtin if entry else None

    def to_list(self) -> list[dict[str, Any]]:
        return [self.entries[code].to_dict() for code in sorted(self.entries)]


#: Common wet-market produce, matching the terminal's default quick keys, with the names
#: other vendors book them under.
DEFAULT_ENTRIES: tuple[CatalogueEntry, ...] = (
    CatalogueEntry("cabbage", "Chinese cabbage", ("大白菜", "白菜", "baicai", "napa cabbage",
                                                   "CAB-01")),
    CatalogueEntry("bok-choy", "Bok choy", ("上海青", "青菜", "pak choi", "BKC-01")),
    CatalogueEntry("tomato", "Tomato", ("西红柿", "番茄", "TOM-01")),
    CatalogueEntry("cucumber", "Cucumber", ("黄瓜", "CUC-01")),
    CatalogueEntry("potato", "Potato", ("土豆", "马铃薯", "POT-01")),
    CatalogueEntry("carrot", "Carrot", ("胡萝卜", "CAR-01")),
    CatalogueEntry("pork-belly", "Pork belly", ("五花肉", "PRK-01")),
    CatalogueEntry("chicken", "Whole chicken", ("整鸡", "鸡", "CHK-01")),
    CatalogueEntry("grass-carp", "Grass carp", ("草鱼", "FSH-01")),
    CatalogueEntry("tofu", "Tofu", ("豆腐", "TOF-01")),
    CatalogueEntry("eggs", "Eggs", ("鸡蛋", "EGG-01")),
    CatalogueEntry("scallion", "Scallion", ("大葱", "葱", "SCL-01")),
)
