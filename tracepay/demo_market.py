"""A small market for the demo: a farm sells to a wholesaler, who sells to a stall.

Both upstream sales go through the same path as a shopper's: a real terminal charges,
the buyer pays at the platform's checkout with the payer identity their business
registered at the bridge, and the bridge links the trades. The stall's later retail sales
then trace back through the wholesaler to the farm.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from .demo_ledger import wait_for_traces
from .demo_shoppers import SimulatedShopper

__all__ = ["Business", "FARM", "WHOLESALER", "STALL", "seed_supply_chain", "stock_for"]


@dataclass(frozen=True)
class Business:
    merchant_id: str
    name: str
    org: str
    payer_id: str

    def enrolment_body(self) -> dict[str, str]:
        return {"merchant_id": self.merchant_id, "merchant_name": self.name, "org": self.org}


FARM = Business("farm-shouguang", "Shouguang Green Farm Co-op", "production_base",
                "shouguang.coop@alipay")
WHOLESALER = Business("xinfadi-w17", "Xinfadi Wholesale Hall 17", "wholesale_market",
                      "xinfadi.w17@alipay")
STALL = Business("stall-a12", "Auntie Li's Vegetables", "retail_market", "auntie.li.a12@wechat")

#: Kilograms of each weighed product, pieces of each counted one, that each layer sells on:
#: the farm to the wholesaler, then the wholesaler to the stall. Shoppers buy a few hundred
#: grams to a few kilograms, or a few pieces.
FARM_KG, FARM_PIECES = 400, 2000
WHOLESALE_KG, WHOLESALE_PIECES = 60, 300
#: What one simulated sale takes of each product at most, on average over many sales
#: (``pos_terminal.simulator.random_cart``: up to 4 of the products, 0.1-3 kg or 1-3
#: pieces each), with a margin: the stall never sells more than it bought.
KG_PER_SALE, PIECES_PER_SALE = 0.6, 1


def stock_for(sales: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """(farm kg, pieces), (wholesale kg, pieces): enough for ``sales`` shoppers' sales."""
    wholesale = (max(WHOLESALE_KG, math.ceil(sales * KG_PER_SALE)),
                 max(WHOLESALE_PIECES, sales * PIECES_PER_SALE))
    farm = (max(FARM_KG, wholesale[0]), max(FARM_PIECES, wholesale[1]))
    return farm, wholesale


def _register_payers(bridge_url: str, admin_token: str) -> None:
    for business in (WHOLESALER, STALL):
        response = requests.post(
            f"{bridge_url}/v1/parties/{business.merchant_id}/payer-ids",
            json={"payer_ids": [business.payer_id], "name": business.name, "org": business.org},
            headers={"Authorization": f"Bearer {admin_token}"}, timeout=10)
        if response.status_code != 200:
            raise RuntimeError(f"bridge refused payer registration: {response.text}")


def _bulk_sale(data_dir: Path, system: Any, seller: Business, buyer: Business,
               kilograms: int, pieces: int) -> str:
    """One bulk sale from ``seller`` to ``buyer`` through terminal, checkout and ledger."""
    from pos_terminal.cart import Cart
    from pos_terminal.provisioning import claim_enrolment, save_enrolment
    from pos_terminal.terminal import Terminal

    enrolment = system.enrol(seller.enrolment_body())
    terminal_dir = data_dir / seller.merchant_id
    save_enrolment(terminal_dir, claim_enrolment(system.urls["gateway"],
                                                 enrolment["enrolment_code"]))
    terminal = Terminal.open(terminal_dir)
    paid = threading.Event()
    terminal.on_result(lambda _sale, result: paid.set() if result["status"] == "paid" else None)
    terminal.start()
    try:
        cart = Cart()
        for product in terminal.catalogue():
            if product.weighed:
                cart.add(product, weight_g=kilograms * 1000)
            else:
                cart.add(product, quantity=pieces)
        charged = terminal.charge(cart, render_png=False)
        outcome = SimulatedShopper(buyer.payer_id).pay(charged.qr_url)
        if not outcome["ok"]:
            raise RuntimeError(f"{buyer.name} could not pay {seller.name}: {outcome}")
        if not paid.wait(60):
            raise RuntimeError(f"no payment result reached {seller.name}'s terminal")
        if not wait_for_traces(system.urls["bridge"], [charged.trace_code],
                               time.monotonic() + 60):
            raise RuntimeError(f"trade {charged.trace_code} did not reach the ledger in 60 s")
        return charged.trace_code
    finally:
        terminal.stop()
        terminal.close()


def seed_supply_chain(system: Any, admin_token: str, sales: int = 0) -> dict[str, str]:
    """Farm -> wholesaler -> stall, each a paid trade on the ledger, with stock for
    ``sales`` retail sales; returns their trace codes."""
    _register_payers(system.urls["bridge"], admin_token)
    upstream = system.data_dir / "upstream"
    farm, wholesale = stock_for(sales)
    return {
        "farm_to_wholesaler": _bulk_sale(upstream, system, FARM, WHOLESALER, *farm),
        "wholesaler_to_stall": _bulk_sale(upstream, system, WHOLESALER, STALL, *wholesale),
    }
