"""First paint of a trace page on loopback, in headless Chromium; prints one JSON object.

Starts a real ledger bridge (gateway key from a file), loads a small market into it over
HTTP, starts the consumer app, then opens the shopper's trace page ``--loads`` times in a
fresh browser context each (no cache, new renderer: the shopper's first visit) and reports
first paint, first contentful paint, server response time, time until the proof check shows
Verified, the bytes the page pulled, and how many requests left the consumer's origin (must
be 0). ``warm_tab_first_paint_ms`` is the same page opened again and again in one open tab,
the usual case of a phone whose browser is already running.

Example:
    .venv/bin/python bench/consumer_paint.py --loads 20
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from consumer_scenario import Market, trace_services  # noqa: E402

from service_base.testing import (  # noqa: E402
    launch_chromium,
)

TARGET_MS = 300
WEIGHT_BUDGET = 200 * 1024


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


PAINT_JS = """async () => {
    // Paint entries are reported once the frame is presented: wait for both.
    const paint = await new Promise(resolve => {
        const seen = {};
        new PerformanceObserver(list => {
            list.getEntries().forEach(e => { seen[e.name] = e.startTime; });
            if ('first-paint' in seen && 'first-contentful-paint' in seen) { resolve(seen); }
        }).observe({type: 'paint', buffered: true});
    });
    const nav = performance.getEntriesByType('navigation')[0];
    const bytes = [nav, ...performance.getEntriesByType('resource')]
        .reduce((sum, e) => sum + (e.encodedBodySize || 0), 0);
    return {fp: paint['first-paint'], fcp: paint['first-contentful-paint'],
            ttfb: nav.responseStart, now: performance.now(), bytes: bytes,
            state: document.getElementById('verify-status').dataset.state};
}"""
WAIT_JS = ("() => ['verified','tampered','unavailable'].includes("
           "document.getElementById('verify-status').dataset.state)")


def measure_warm(browser, trace_url: str, loads: int) -> dict:
    """One open browser tab visiting trace pages one after another (scripts cached)."""
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    paints = []
    for index in range(loads + 1):
        page.goto(f"{trace_url}&visit={index}", wait_until="load")
        page.wait_for_function(WAIT_JS, timeout=15_000)
        timing = page.evaluate(PAINT_JS)
        if index:  # the first visit is the cold one, measured separately
            paints.append(timing["fp"])
    context.close()
    return {"p50": round(statistics.median(paints), 1),
            "p95": round(_percentile(paints, 0.95), 1)}


def measure(trace_url: str, origin: str, loads: int) -> dict:
    from playwright.sync_api import sync_playwright

    paints, contentful, verified, weights, foreign, ttfbs = [], [], [], [], [], []
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        for _ in range(loads):
            context = browser.new_context(viewport={"width": 390, "height": 844})
            page = context.new_page()
            outside: list[str] = []
            page.on("request", lambda request, out=outside: out.append(request.url)
                    if not request.url.startswith(origin) else None)
            page.goto(trace_url, wait_until="load")
            page.wait_for_function(WAIT_JS, timeout=15_000)
            timing = page.evaluate(PAINT_JS)
            if timing["state"] != "verified":
                raise RuntimeError(f"trace page did not verify: {timing['state']}")
            paints.append(timing["fp"])
            ttfbs.append(timing["ttfb"])
            contentful.append(timing["fcp"])
            verified.append(timing["now"])
            weights.append(timing["bytes"])
            foreign.extend(outside)
            context.close()
        warm = measure_warm(browser, trace_url, loads)
        browser.close()
    return {
        "loads": loads,
        "first_paint_ms": {"p50": round(statistics.median(paints), 1),
                           "p95": round(_percentile(paints, 0.95), 1),
                           "max": round(max(paints), 1)},
        "warm_tab_first_paint_ms": warm,
        "server_response_ms": {"p50": round(statistics.median(ttfbs), 1),
                               "p95": round(_percentile(ttfbs, 0.95), 1)},
        "first_contentful_paint_ms": {"p50": round(statistics.median(contentful), 1),
                                      "p95": round(_percentile(contentful, 0.95), 1)},
        "verified_by_ms": {"p50": round(statistics.median(verified), 1),
                           "max": round(max(verified), 1)},
        "page_bytes": max(weights),
        "page_weight_budget_bytes": WEIGHT_BUDGET,
        "external_requests": len(foreign),
        "target_first_paint_ms": TARGET_MS,
        # Loopback timings depend on what else the machine runs: say how busy it was.
        "load_average_1m": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
        "meets_target": _percentile(paints, 0.95) <= TARGET_MS and max(weights) <= WEIGHT_BUDGET
        and not foreign,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loads", type=int, default=20, help="page loads to time")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="consumer-paint-") as tmp:
        root = Path(tmp)
        key = Ed25519PrivateKey.generate()
        with trace_services(root, key) as (bridge_url, consumer_url):
            (code,) = Market(key).load(bridge_url, shoppers=1)
            result = measure(f"{consumer_url}/trace/{code}?lang=en", consumer_url, args.loads)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
