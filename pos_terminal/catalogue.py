"""The vendor's quick keys: products with a unit price the vendor may change at any time.

Stored as ``catalogue.json`` in the terminal's data directory so a price edit survives a
restart; a fresh terminal starts from a catalogue of common wet-market produce.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

__all__ = ["UNITS", "Product", "DEFAULT_PRODUCTS", "load_catalogue", "save_catalogue",
           "CATALOGUE_FILE"]

CATALOGUE_FILE = "catalogue.json"
#: Pricing units a quick key may use; weighed units are priced per kg or per 500 g (jin).
UNITS = ("kg", "500g", "piece")
_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
_COLOUR = re.compile(r"^#[0-9A-Fa-f]{6}$")


@dataclass(frozen=True, slots=True)
class Product:
    """One quick key. ``unit_price_fen`` is per ``unit``; ``lot``/``origin`` feed the trace."""

    code: str
    name: str
    name_zh: str
    unit: str
    unit_price_fen: int
    colour: str
    lot: str | None = None
    origin: str | None = None

    def __post_init__(self) -> None:
        if not _CODE.match(self.code):
            raise ValueError(f"product code {self.code!r}: use letters, digits and _ . : -")
        if self.unit not in UNITS:
            raise ValueError(f"product {self.code}: unit {self.unit!r} is not one of {UNITS}")
        if (not isinstance(self.unit_price_fen, int) or isinstance(self.unit_price_fen, bool)
                or not 0 <= self.unit_price_fen < 2**32):
            raise ValueError(f"product {self.code}: unit_price_fen must be an integer >= 0")
        if not _COLOUR.match(self.colour):
            raise ValueError(f"product {self.code}: colour must be '#rrggbb', not {self.colour!r}")
        if not self.name or len(self.name) > 80:
            raise ValueError(f"product {self.code}: name must be 1-80 characters")

    @property
    def weighed(self) -> bool:
        return self.unit != "piece"

    def with_price(self, unit_price_fen: int) -> Product:
        """The same key at a new price (the vendor edits prices through the day)."""
        return replace(self, unit_price_fen=unit_price_fen)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Product:
        known = {"code", "name", "name_zh", "unit", "unit_price_fen", "colour", "lot", "origin"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown product field(s): {', '.join(unknown)}")
        return cls(**data)


DEFAULT_PRODUCTS: tuple[Product, ...] = (
    Product("cabbage", "Chinese cabbage", "大白菜", "500g", 150, "#8BC34A",
            "LOT-CAB-0001", "Shouguang, Shandong"),
    Product("bok-choy", "Bok choy", "上海青", "500g", 300, "#4CAF50",
            "LOT-BKC-0001", "Chongming, Shanghai"),
    Product("tomato", "Tomato", "西红柿", "500g", 400, "#F44336",
            "LOT-TOM-0001", "Shouguang, Shandong"),
    Product("cucumber", "Cucumber", "黄瓜", "500g", 250, "#2E7D32",
            "LOT-CUC-0001", "Shouguang, Shandong"),
    Product("potato", "Potato", "土豆", "500g", 180, "#C8A165",
            "LOT-POT-0001", "Dingxi, Gansu"),
    Product("carrot", "Carrot", "胡萝卜", "500g", 200, "#FF9800",
            "LOT-CAR-0001", "Xiamen, Fujian"),
    Product("pork-belly", "Pork belly", "五花肉", "500g", 1800, "#E57373",
            "LOT-PRK-0001", "Jinhua, Zhejiang"),
    Product("chicken", "Whole chicken", "整鸡", "kg", 3200, "#FFCC80",
            "LOT-CHK-0001", "Qingyuan, Guangdong"),
    Product("grass-carp", "Grass carp", "草鱼", "500g", 1100, "#64B5F6",
            "LOT-FSH-0001", "Hongze Lake, Jiangsu"),
    Product("tofu", "Tofu", "豆腐", "piece", 350, "#FFF9C4",
            "LOT-TOF-0001", "Local workshop"),
    Product("eggs", "Eggs", "鸡蛋", "500g", 600, "#FFE082",
            "LOT-EGG-0001", "Pinggu, Beijing"),
    Product("scallion", "Scallion", "大葱", "500g", 350, "#AED581",
            "LOT-SCL-0001", "Zhangqiu, Shandong"),
)


def load_catalogue(data_dir: str | os.PathLike[str]) -> list[Product]:
    """The vendor's saved quick keys, or the default produce when none were saved yet."""
    path = Path(data_dir) / CATALOGUE_FILE
    if not path.exists():
        return list(DEFAULT_PRODUCTS)
    try:
        items = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(items, list):
        raise ValueError(f"{path} must hold a JSON list of products")
    products = [Product.from_dict(item) for item in items]
    codes = [product.code for product in products]
    if len(set(codes)) != len(codes):
        raise ValueError(f"{path} has duplicate product codes")
    return products


def save_catalogue(data_dir: str | os.PathLike[str], products: list[Product]) -> Path:
    """Write atomically (temp file + rename) so a power cut never leaves half a catalogue."""
    path = Path(data_dir) / CATALOGUE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    codes = [product.code for product in products]
    if len(set(codes)) != len(codes):
        raise ValueError("duplicate product codes in catalogue")
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps([p.to_dict() for p in products], ensure_ascii=False, indent=1),
                   encoding="utf-8")
    os.replace(tmp, path)
    return path
