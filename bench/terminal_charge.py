"""Tap Charge -> QR PNG ready: the vendor-visible latency of ``Terminal.charge``.

Covers the outbox commit (WAL, synchronous=FULL), the MAC, the token and URL, and the PNG
(level M). Runs offline, as a stall does when the network is down. Prints one JSON object.

Example:
    .venv/bin/python bench/terminal_charge.py --samples 300
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from pos_terminal import DEFAULT_PRODUCTS, Cart, Terminal
from pos_terminal.provisioning import update_config
from pos_terminal.testing import enrol_offline


def _five_line_cart() -> Cart:
    cart = Cart()
    for index, weight in enumerate((1234, 456, 789, 1500, 2001)):
        product = DEFAULT_PRODUCTS[index]
        cart.add(product, weight_g=weight)
    return cart


def _measure(data_dir: Path, samples: int) -> dict[str, float]:
    cart, times = _five_line_cart(), []
    with Terminal.open(data_dir) as term:
        for _ in range(10):  # warm-up: imports, first page allocations
            term.charge(cart)
        for _ in range(samples):
            start = time.perf_counter()
            charged = term.charge(cart)
            times.append((time.perf_counter() - start) * 1000)
            assert charged.qr_png
    times.sort()
    return {"median_ms": round(statistics.median(times), 2),
            "p95_ms": round(times[int(len(times) * 0.95) - 1], 2),
            "max_ms": round(times[-1], 2), "samples": samples}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        enrol_offline(Path(tmp) / "url", "T-BENCH-URL")
        enrol_offline(Path(tmp) / "emv", "T-BENCH-EMV")
        update_config(Path(tmp) / "emv", qr_format="emv")
        result = {"url_qr": _measure(Path(tmp) / "url", args.samples),
                  "emv_qr": _measure(Path(tmp) / "emv", args.samples),
                  "target_median_ms": 100}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
