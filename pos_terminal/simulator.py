"""The headless sales simulator: rings up random weighed sales and reports each event.

Drives the real Terminal (outbox, QR, MQTT uplink) exactly as the screen does. Output is
one JSON object per line on stdout, flushed at once, so a supervising process (the demo)
can follow it live:

* ``{"event": "charged", "sale_id", "seq", "total_fen", "qr_url", "trace_code"}``
* ``{"event": "result", "sale_id", "seq", "status"}`` on every new payment status
* ``{"event": "done", "charged", "paid", "queued", ...}`` once every sale has a final
  result or the wait ran out.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Sequence
from typing import Any, TextIO

from .cart import Cart
from .catalogue import Product
from .outbox import FINAL_STATUSES, StoredSale
from .terminal import Terminal

__all__ = ["random_cart", "simulate_sales"]


def random_cart(products: Sequence[Product], rng: random.Random) -> Cart:
    """1-4 lines: weighed goods 100 g - 3 kg, pieces 1-3, as at a real stall."""
    cart = Cart()
    for product in rng.sample(list(products), k=min(len(products), rng.randint(1, 4))):
        if product.weighed:
            cart.add(product, weight_g=rng.randint(100, 3000))
        else:
            cart.add(product, quantity=rng.randint(1, 3))
    return cart


class _EventWriter:
    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._lock = threading.Lock()

    def write(self, event: dict[str, Any]) -> None:
        line = json.dumps(event, ensure_ascii=False)
        with self._lock:
            self._out.write(line + "\n")
            self._out.flush()


def simulate_sales(terminal: Terminal, count: int, *, out: TextIO, interval_ms: int = 0,
                   wait_results: float = 0.0, drain_timeout: float = 10.0,
                   seed: int | None = None) -> dict[str, Any]:
    """Charge ``count`` sales, then wait for results and for the outbox to drain."""
    rng = random.Random(seed)
    writer = _EventWriter(out)
    products = terminal.catalogue()
    mine: dict[str, int] = {}
    final: dict[str, str] = {}
    all_final = threading.Event()
    lock = threading.Lock()

    def on_result(sale: StoredSale, result: dict[str, Any]) -> None:
        with lock:
            if sale.sale_id not in mine:
                return
            if result["status"] in FINAL_STATUSES:
                final[sale.sale_id] = result["status"]
            if len(final) >= count:
                all_final.set()
        writer.write({"event": "result", "sale_id": sale.sale_id, "seq": sale.seq,
                      "status": result["status"]})

    unsubscribe = terminal.on_result(on_result)
    terminal.start()
    try:
        for index in range(count):
            charged = terminal.charge(random_cart(products, rng), render_png=False)
            with lock:
                mine[charged.sale_id] = charged.seq
            writer.write({"event": "charged", "sale_id": charged.sale_id, "seq": charged.seq,
                          "total_fen": charged.total_fen, "qr_url": charged.qr_url,
                          "trace_code": charged.trace_code})
            if interval_ms and index + 1 < count:
                time.sleep(interval_ms / 1000)
        if count == 0:
            all_final.set()
        all_final.wait(wait_results)
        deadline = time.monotonic() + drain_timeout
        while terminal.outbox_counts()["queued"] and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        unsubscribe()
        terminal.stop()
    with lock:
        statuses = list(final.values())
    summary = {"event": "done", "charged": count, "paid": statuses.count("paid"),
               "final": len(statuses), "queued": terminal.outbox_counts()["queued"],
               "device_id": terminal.device_id}
    writer.write(summary)
    return summary
