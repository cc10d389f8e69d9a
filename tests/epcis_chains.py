"""Generated farm -> wholesale -> stall -> shopper chains posted to a real bridge, for the
EPCIS tests that check our exports with outside implementations.

Each chain draws its products, weights, piece counts, lot labels, places of production and
times from a seeded random generator, so a failure names a seed that reproduces it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger_bridge.app import create_app
from ledger_bridge.sample_trades import Seller, line, make_trade
from ledger_bridge.service import BridgeService

KEY = Ed25519PrivateKey.generate()
FARM = Seller("farm-a", "Farm A", "production_base", "dev-fa")
WHOLESALER = Seller("whole-1", "Wholesaler 1", "wholesale_market", "dev-w1")
STALL = Seller("stall-1", "Stall 1", "retail_market", "dev-s1")
#: code, GTIN (None: no Digital Link) and whether it is sold by the piece.
PRODUCTS = (("cabbage", "6901234567892", False), ("pork", "06901234500011", False),
            ("tofu", None, True), ("eggs", "4006381333931", True), ("ginger", None, False))
PLACES = ("Shouguang, Shandong", "山东寿光", "Farm A field 7", "Yunnan 3.5 km north", None)
READINGS = ("inhibition_pct", "nitrite mg/kg", "有机磷", "clenbuterol")
INSPECTORS = ("Market lab", "质检员 王", "Inspector 7")
LOT_LABEL_CHARS = "ABCXYZ0123456789_.:-"


def bridge_client(data_dir: Any) -> tuple[Any, BridgeService]:
    """A bridge with the wholesaler and the stall registered and GTINs in its catalogue."""
    service = BridgeService(data_dir, gateway_key=KEY.public_key(), block_timeout_s=0.05)
    client = create_app(service).test_client()
    for seller, payer in ((WHOLESALER, "w1"), (STALL, "s1")):
        client.post(f"/v1/parties/{seller.merchant_id}/payer-ids",
                    json={"payer_ids": [payer], "name": seller.name, "org": seller.org})
    for code, gtin, _pieces in PRODUCTS:
        entry = {"code": code, "name": code.title(), "synonyms": []}
        if gtin:
            entry["gtin"] = gtin
        assert client.post("/v1/catalogue", json=entry).status_code in (200, 201)
    return client, service


@dataclass
class Chain:
    """The trades of one chain, farm first, and the shopper's trace code."""

    trades: list[dict[str, Any]]

    @property
    def shopper_code(self) -> str:
        return self.trades[-1]["trace_code"]

    @property
    def farm_code(self) -> str:
        return self.trades[0]["trace_code"]


def _line(rng: random.Random, code: str, pieces: bool, amount: int, *, lot: str | None = None,
          origin: str | None = None) -> dict[str, Any]:
    if pieces:
        return line(code, unit="piece", quantity=amount, unit_price_fen=rng.randint(10, 900),
                    lot=lot, origin=origin)
    return line(code, amount, unit_price_fen=rng.randint(100, 3_000), lot=lot, origin=origin)


def _part(rng: random.Random, amount: int) -> int:
    return max(1, amount * rng.randint(1, 100) // 100)


def post_chain(client: Any, rng: random.Random, seq: int) -> Chain:
    """One chain of 1-3 products: the farm sells to the wholesaler, it part of that to the
    stall, the stall part of its first product to a shopper; every sale accepted."""
    products = rng.sample(PRODUCTS, rng.randint(1, 3))
    farm = [rng.randint(1, 400) if pieces else rng.randint(1, 80_000)
            for _code, _gtin, pieces in products]
    wholesale = [_part(rng, amount) for amount in farm]
    start = 1_763_700_000_000 + seq * 86_400_000 + rng.randint(0, 3_600_000)
    farm_lines = [_line(rng, code, pieces, amount,
                        lot="".join(rng.choices(LOT_LABEL_CHARS, k=rng.randint(1, 12))),
                        origin=rng.choice(PLACES))
                  for (code, _gtin, pieces), amount in zip(products, farm, strict=True)]
    trades = [make_trade(KEY, FARM, seq, farm_lines, payer_id="w1", at_ms=start)]
    trades.append(make_trade(KEY, WHOLESALER, seq, [
        _line(rng, code, pieces, amount)
        for (code, _gtin, pieces), amount in zip(products, wholesale, strict=True)],
        payer_id="s1", at_ms=start + rng.randint(60_000, 9_000_000)))
    code, _gtin, pieces = products[0]
    trades.append(make_trade(KEY, STALL, seq, [
        _line(rng, code, pieces, _part(rng, wholesale[0]))],
        at_ms=start + rng.randint(10_000_000, 40_000_000)))
    for trade in trades:
        answer = client.post("/v1/trades", json=trade)
        assert answer.status_code == 200 and answer.json["status"] == "accepted", answer.json
    for trade in (trades[0], trades[2]):
        if rng.random() < 0.7:
            post_rapid_test(client, rng, f"{trade['trace_code']}-0", start + 50_000_000)
    return Chain(trades)


def post_rapid_test(client: Any, rng: random.Random, lot: str, at_ms: int) -> dict[str, Any]:
    """A rapid test of ``lot`` with 0-3 readings: numbers, numbers as text, words."""
    readings = {name: rng.choice([rng.randint(0, 100), round(rng.uniform(0, 50), 2), "35.20",
                                  "negative", "阴性"])
                for name in rng.sample(READINGS, rng.randint(0, 3))}
    body = {"result": rng.choice(["pass", "fail"]), "inspector": rng.choice(INSPECTORS),
            "values": readings, "tested_at_ms": at_ms + rng.randint(0, 999)}
    if rng.random() < 0.5:
        body["method"] = "GB/T 5009.199 enzyme inhibition"
    answer = client.post(f"/v1/lots/{lot}/tests", json=body)
    assert answer.status_code == 201, answer.json
    return answer.json
