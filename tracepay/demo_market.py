"""A small market for the demo: a farm sells to a wholesaler, who sells to a stall.

Both upstream sales go through the same path as a shopper's: a real terminal charges,
the buyer pays at the platform's checkout with the payer identity their business
registered at the bridge, and the bridge links the trades. The stall's later retail sales
then trace back through the wholesaler to the farm.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

__all__ = ["Business", "FARM", "WHOLESALER", "STALL", "seed_supply_chain", "wait_for_traces"]


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

    from .demo import SimulatedShopper

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


def wait_for_traces(bridge_url: str, trace_codes: list[str],
                    deadline: float) -> dict[str, dict[str, Any]]:
    """Poll the bridge until each code's trace answers (or ``deadline``, monotonic time);
    returns the traces found, by code."""
    pending, found = list(trace_codes), {}
    session = requests.Session()
    while pending and time.monotonic() < deadline:
        still = []
        for code in pending:
            try:
                answer = session.get(f"{bridge_url}/v1/trace/{code}", timeout=5)
            except requests.RequestException:
                answer = None
            if answer is not None and answer.status_code == 200:
                found[code] = answer.json()
            else:
                still.append(code)
        pending = still
        if pending:
            time.sleep(0.2)
    return found


def seed_supply_chain(system: Any, admin_token: str) -> dict[str, str]:
    """Farm -> wholesaler -> stall, each a paid trade on the ledger; returns their trace codes."""
    _register_payers(system.urls["bridge"], admin_token)
    upstream = system.data_dir / "upstream"
    return {
        "farm_to_wholesaler": _bulk_sale(upstream, system, FARM, WHOLESALER, FARM_KG,
                                         FARM_PIECES),
        "wholesaler_to_stall": _bulk_sale(upstream, system, WHOLESALER, STALL, WHOLESALE_KG,
                                          WHOLESALE_PIECES),
    }
