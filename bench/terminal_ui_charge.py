"""Tap Charge -> QR on the customer display, through the real windows under Xvfb.

The clock starts when the Charge button's touch-up is dispatched in the vendor process and
stops when the customer display's window has flipped a frame showing that sale's QR (both
``time.monotonic_ns``, one clock for all processes on Linux). Between them: the outbox
commit, MAC and token, the IPC frame, the QR matrix, the texture and one frame of drawing.
The terminal runs with its broker address unreachable: the QR must not need the network.
Also rings up a five-line sale for real and counts the taps, with the simulated scale and
with keypad entry. Prints one JSON object.

Example:
    .venv/bin/python bench/terminal_ui_charge.py --samples 30
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from pos_terminal.testing import enrol_offline
from pos_terminal.ui.harness import TerminalWindows, VirtualScreen
from service_base.testing import free_port

SCALE_SALE = [(803, "product-cabbage"), (350, "product-tomato"), (1200, "product-chicken"),
              (None, "product-tofu"), (500, "product-eggs")]
KEYPAD_SALE = ["key-8", "key-0", "key-3", "product-cabbage", "key-3", "key-5", "key-0",
               "product-tomato", "key-1", "key-2", "key-0", "key-0", "product-chicken",
               "product-tofu", "key-5", "key-0", "key-0", "product-eggs"]


def _charge_and_wait(windows: TerminalWindows) -> dict[str, float]:
    """Milliseconds from Charge's touch-up to the display's flip showing the QR, and where
    they went: vendor (outbox, MAC, token), IPC hop, display (QR, texture, frame)."""
    tap = windows.vendor.tap("charge")
    state = windows.vendor.wait_for(
        lambda s: s["pending_sale_id"] and s["display_shown"].get("phase") == "qr"
        and s["display_shown"].get("sale_id") == s["pending_sale_id"], what="QR shown")
    shown = state["display_shown"]
    return {"total": (shown["t_ns"] - tap["up_ns"]) / 1e6,
            "vendor": (shown["sent_ns"] - tap["up_ns"]) / 1e6,
            "ipc": (shown["applied_ns"] - shown["sent_ns"]) / 1e6,
            "display_state": (shown["drawn_ns"] - shown["applied_ns"]) / 1e6,
            "display_frame": (shown["t_ns"] - shown["drawn_ns"]) / 1e6,
            "display_qr": shown.get("qr_ms", 0.0)}


def _reset(windows: TerminalWindows) -> None:
    windows.vendor.tap("cancel")
    windows.vendor.tap("clear-cart")


def _five_line_taps(windows: TerminalWindows, *, scale: bool) -> int:
    taps = 0
    if scale:
        for grams, target in SCALE_SALE:
            if grams:
                windows.vendor.request(op="scale_place", grams=grams)
            windows.vendor.tap(target)
            taps += 1
    else:
        windows.vendor.request(op="scale_place", grams=0)
        for target in KEYPAD_SALE:
            windows.vendor.tap(target)
            taps += 1
    lines = len(windows.vendor.state()["lines"])
    if lines != 5:
        raise RuntimeError(f"expected 5 cart lines after the taps, found {lines}")
    _charge_and_wait(windows)
    _reset(windows)
    return taps + 1


def run(samples: int, warmup: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp, VirtualScreen() as screen:
        data_dir = Path(tmp) / "terminal"
        enrol_offline(data_dir, "T-BENCH-UI", mqtt_port=free_port())  # nothing listens there
        with TerminalWindows(data_dir, screen.display, log_path=Path(tmp) / "app.log",
                             scale="simulated") as windows:
            windows.vendor.wait_for(lambda s: s["display_connected"], what="display")
            times = []
            for index in range(warmup + samples):
                windows.vendor.tap("product-tofu")
                elapsed = _charge_and_wait(windows)
                if index >= warmup:
                    times.append(elapsed)
                _reset(windows)
            taps_scale = _five_line_taps(windows, scale=True)
            taps_keypad = _five_line_taps(windows, scale=False)
    parts = {part: round(statistics.median(t[part] for t in times), 2)
             for part in ("vendor", "ipc", "display_state", "display_qr", "display_frame")}
    times = sorted(t["total"] for t in times)
    return {
        "benchmark": "terminal_ui_charge",
        "what": "Charge touch-up -> customer display frame with the QR, real windows, Xvfb",
        "samples": len(times),
        "median_ms": round(statistics.median(times), 2),
        "p90_ms": round(times[int(0.9 * (len(times) - 1))], 2),
        "min_ms": round(times[0], 2),
        "max_ms": round(times[-1], 2),
        "target_median_ms": 100,
        "median_parts_ms": parts,
        "network": "broker unreachable (offline)",
        "taps_five_line_sale_with_scale": taps_scale,
        "taps_five_line_sale_keypad": taps_keypad,
        "load_average_1m": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()
    started = time.monotonic()
    result = run(args.samples, args.warmup)
    result["wall_s"] = round(time.monotonic() - started, 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
