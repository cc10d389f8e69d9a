"""Trace and stall pages against a real ledger bridge, opened in headless Chromium at phone size.

The bridge runs as its own process with a gateway key from a file; a small market (farm →
wholesale → stall → shoppers) is posted to it as gateway-signed trades. The pages are then
checked as a shopper sees them: Verified, then Tampered after the off-chain record is edited
in the bridge's SQLite behind the page's back, then a recall warning after an inspector fails
the farm's lot. Screenshots go to test-artifacts/screenshots/ (TRACEPAY_SCREENSHOTS_DIR=docs/screenshots refreshes the docs).
"""

from __future__ import annotations

import sqlite3
import sys
import time
from pathlib import Path

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from service_base.testing import ServiceProcess, free_port, screenshot_dir, tracepay_command

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from consumer_scenario import FARM, STALL, Market, trace_services, wait_for_trace  # noqa: E402
from ledger_files import edit_record  # noqa: E402

SCREENSHOTS = screenshot_dir()
PHONE = {"width": 390, "height": 844}
STATES = "['verified','tampered','unavailable','none']"


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    root = tmp_path_factory.mktemp("consumer-live")
    key = Ed25519PrivateKey.generate()
    with trace_services(root, key) as (bridge_url, consumer_url):
        market = Market(key)
        codes = market.load(bridge_url, shoppers=5)
        yield {"bridge": bridge_url, "consumer": consumer_url, "codes": codes,
               "data_dir": root / "bridge", "market": market}


def _open(browser, url: str, *, lang: str = "en-US"):
    """A fresh phone-sized page; returns it with the list of requests that left the origin."""
    context = browser.new_context(viewport=PHONE, locale=lang,
                                  extra_http_headers={"Accept-Language": lang})
    page = context.new_page()
    page.add_init_script("window.__cspViolations = [];"
                         "document.addEventListener('securitypolicyviolation',"
                         " e => window.__cspViolations.push(e.violatedDirective));")
    origin = url.split("/", 3)[:3]
    outside: list[str] = []
    page.on("request", lambda r: outside.append(r.url)
            if r.url.split("/", 3)[:3] != origin else None)
    page.goto(url, wait_until="load")
    return page, outside


def _verify_state(page) -> str:
    page.wait_for_function(f"() => {STATES}.includes("
                           "document.getElementById('verify-status').dataset.state)",
                           timeout=15_000)
    return page.get_attribute("#verify-status", "data-state")


def _page_bytes(page) -> int:
    return page.evaluate("""() => [performance.getEntriesByType('navigation')[0],
        ...performance.getEntriesByType('resource')]
        .reduce((sum, e) => sum + (e.encodedBodySize || 0), 0)""")


def _shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"consumer-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size <= 300 * 1024, f"{path} is larger than 300 KB"


def test_trace_page_shows_verified_and_the_timeline(browser, system):
    code = system["codes"][0]
    page, outside = _open(browser, f"{system['consumer']}/trace/{code}")
    assert _verify_state(page) == "verified"
    assert page.inner_text("#verify-status .verify-title").strip() == "Verified"
    assert page.locator("#verify-status .verify-problems li").count() == 0
    stages = page.eval_on_selector_all("#timeline li", "els => els.map(e => e.dataset.stage)")
    assert stages == ["production_base", "wholesale_market", "retail_market"]
    timeline = page.inner_text("#timeline")
    assert "Green Field Co-op" in timeline and "Zhang's Wholesale" in timeline
    assert "Auntie Li's Vegetables" in timeline
    assert "1.25 kg" in timeline and "500 kg" in timeline and "20 kg" in timeline
    assert "Shouguang" in timeline and "F-1119" in timeline
    heights = page.eval_on_selector_all(".block-height", "els => els.map(e => e.textContent)")
    assert len(heights) == 3 and all(h.strip().isdigit() for h in heights)
    assert page.locator("[data-proof-index][data-state=verified]").count() == 3
    assert outside == [], f"requests left the consumer: {outside}"
    assert page.evaluate("window.__cspViolations") == []
    policy = requests.get(page.url, timeout=10).headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "script-src 'self' 'sha256-" in policy
    assert _page_bytes(page) <= 200 * 1024
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    _shot(page, "trace-verified")
    page.context.close()


@pytest.mark.parametrize("width", [360, 414])
@pytest.mark.parametrize("path", ["trace", "stall"])
def test_pages_fit_phone_widths_without_sideways_scrolling(browser, system, width, path):
    target = system["codes"][0] if path == "trace" else STALL.merchant_id
    for lang in ("en-US", "zh-CN"):
        context = browser.new_context(viewport={"width": width, "height": 800}, locale=lang,
                                      extra_http_headers={"Accept-Language": lang})
        page = context.new_page()
        page.goto(f"{system['consumer']}/{path}/{target}", wait_until="load")
        assert page.evaluate("document.documentElement.scrollWidth") <= width, (path, lang)
        context.close()


def test_trace_page_speaks_chinese_to_a_chinese_phone(browser, system):
    page, _ = _open(browser, f"{system['consumer']}/trace/{system['codes'][0]}", lang="zh-CN")
    assert _verify_state(page) == "verified"
    assert page.inner_text("#verify-status .verify-title").strip() == "已验证"
    assert "生产基地" in page.inner_text("#timeline")
    page.click("#lang-switch")
    page.wait_for_load_state("load")
    assert "lang=en" in page.url
    assert _verify_state(page) == "verified"
    assert "Farm" in page.inner_text("#timeline")
    page.context.close()


def test_a_trace_seen_once_opens_and_verifies_again_offline(browser, system):
    url = f"{system['consumer']}/trace/{system['codes'][0]}"
    page, _ = _open(browser, url)
    assert _verify_state(page) == "verified"
    saved = """async () => {
        for (const name of await caches.keys()) {
            if (await (await caches.open(name)).match(location.href, {ignoreVary: true})) {
                return true;
            }
        }
        return false; }"""
    deadline = time.monotonic() + 15
    while not page.evaluate(saved):
        assert time.monotonic() < deadline, "the service worker never saved the page"
        time.sleep(0.1)
    page.context.set_offline(True)
    page.reload(wait_until="load")
    assert _verify_state(page) == "verified"
    assert "Green Field Co-op" in page.inner_text("#timeline")
    from playwright.sync_api import Error as PlaywrightError

    with pytest.raises(PlaywrightError):  # a page never opened cannot come from nowhere
        page.goto(f"{system['consumer']}/trace/{system['codes'][1]}x", wait_until="load")
    page.context.close()


def test_a_phone_without_ed25519_says_it_cannot_verify(browser, system):
    context = browser.new_context(viewport=PHONE, locale="en-US")
    context.add_init_script("crypto.subtle.importKey = () => Promise.reject("
                            "new DOMException('no Ed25519', 'NotSupportedError'));")
    page = context.new_page()
    page.goto(f"{system['consumer']}/trace/{system['codes'][0]}", wait_until="load")
    assert _verify_state(page) == "unavailable"
    assert page.inner_text("#verify-status .verify-title").strip() == "Cannot verify"
    context.close()


def test_pinned_ledger_keys_decide_what_verifies(browser, system, tmp_path):
    import json

    from market_protocol.signing import public_key_raw_b64

    published = requests.get(f"{system['bridge']}/v1/keys", timeout=10).json()["keys"]
    stranger = dict(published, orderer=public_key_raw_b64(Ed25519PrivateKey.generate()))
    for name, keys, expected in (("same", published, "verified"),
                                 ("stranger", stranger, "tampered")):
        pinned = tmp_path / f"{name}.json"
        pinned.write_text(json.dumps(keys))
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        with ServiceProcess(tracepay_command(
                "consumer", "--port", str(port), "--bridge-url", system["bridge"],
                "--gateway-url", system["bridge"]), log_path=tmp_path / f"{name}.log",
                health_url=f"{url}/healthz",
                env={"TRACEPAY_CONSUMER_LEDGER_KEYS_FILE": str(pinned)}):
            page, _ = _open(browser, f"{url}/trace/{system['codes'][0]}")
            assert _verify_state(page) == expected, name
            if expected == "tampered":
                assert "bad signature by orderer" in page.inner_text("#verify-status")
            page.context.close()


def test_unknown_trace_code_is_a_friendly_404(browser, system):
    url = f"{system['consumer']}/trace/zzzzzzzzzzzz"
    page, _ = _open(browser, url)
    assert page.get_attribute("#error", "data-error") == "unknown_trace_code"
    assert "no record for this trace code" in page.inner_text("#error")
    page.context.close()
    api = requests.get(url, headers={"Accept": "application/json"}, timeout=10)
    assert api.status_code == 404 and api.json()["error"] == "unknown_trace_code"
    assert requests.get(url, timeout=10).headers["Content-Type"].startswith("text/html")


def _tamper(data_dir: Path, record_id: str) -> int:
    """Edit the off-chain record in every node's SQLite file, as an insider would."""
    changed = 0
    for store in sorted((data_dir / "ledger").glob("*/ledger.sqlite")):
        edits: list[bytes] = []

        def double_weight(body: bytes, edits: list[bytes] = edits) -> bytes:
            edited = body.replace(b'"weight_g":1250', b'"weight_g":2500')
            edits.append(edited)
            return edited

        edit_record(store, record_id, double_weight)
        changed += len(edits)
    return changed


def test_tampered_record_shows_tampered(browser, system):
    code = system["codes"][1]
    record_id = wait_for_trace(system["bridge"], code)["record"]["trade_id"]
    assert _tamper(system["data_dir"], record_id) >= 1
    answer = requests.get(f"{system['bridge']}/v1/trace/{code}", timeout=10).json()
    assert '"weight_g":2500' in answer["proofs"][0]["record_canonical"]
    page, _ = _open(browser, f"{system['consumer']}/trace/{code}")
    assert _verify_state(page) == "tampered"
    assert page.inner_text("#verify-status .verify-title").strip() == "Tampered"
    problems = page.inner_text("#verify-status .verify-problems")
    assert "record does not match its on-chain hash" in problems
    assert page.locator("[data-proof-index][data-state=tampered]").count() == 1
    assert page.locator("[data-proof-index][data-state=verified]").count() == 2
    _shot(page, "trace-tampered")
    page.context.close()
    untouched, _ = _open(browser, f"{system['consumer']}/trace/{system['codes'][0]}")
    assert _verify_state(untouched) == "verified"
    untouched.context.close()


def test_a_changed_copy_on_a_node_not_served_still_shows_tampered(browser, system):
    """Only the retail market's copy is edited; the page is served another node's copy."""
    code = system["codes"][4]
    record_id = wait_for_trace(system["bridge"], code)["record"]["trade_id"]
    store = system["data_dir"] / "ledger" / "retail_market" / "ledger.sqlite"
    edit_record(store, record_id,
                lambda body: body.replace(b'"trade_id":"', b'"trade_id":"x', 1))
    answer = requests.get(f"{system['bridge']}/v1/trace/{code}", timeout=10).json()
    served = answer["proofs"][0]
    assert served["node_record_hashes"]["retail_market"] != served["leaf"]["record_hash"]
    page, _ = _open(browser, f"{system['consumer']}/trace/{code}")
    assert _verify_state(page) == "tampered"
    assert "the retail_market node's copy of the record was changed" in page.inner_text(
        "#verify-status .verify-problems")
    page.context.close()


def test_record_shown_but_not_on_the_ledger_shows_tampered(browser, system):
    """Edit the bridge's own index (what the page displays), not the ledger's copy."""
    code = system["codes"][3]
    with sqlite3.connect(system["data_dir"] / "bridge.sqlite") as db:
        changed = db.execute("UPDATE trades SET public = replace(public, 'Auntie Li', "
                             "'Uncle Wu') WHERE trace_code = ?", (code,)).rowcount
    assert changed == 1
    page, _ = _open(browser, f"{system['consumer']}/trace/{code}")
    assert "Uncle Wu" in page.inner_text("#timeline")
    assert _verify_state(page) == "tampered"
    assert "the record shown differs from the record on the ledger" in page.inner_text(
        "#verify-status .verify-problems")
    page.context.close()


def test_stall_page_lists_todays_stock_and_its_qr_opens_the_page(browser, system):
    url = f"{system['consumer']}/stall/{STALL.merchant_id}"
    page, outside = _open(browser, url)
    stock = page.inner_text("#stock")
    assert "cabbage" in stock and "tomato" in stock
    assert "Green Field Co-op" in stock and "Shouguang" in stock and "W-17" in stock
    assert "13.75 kg" in stock  # 20 kg bought, five shoppers took 1.25 kg each
    page.add_script_tag(url=f"{system['consumer']}/static/vendor/jsQR.min.js")
    decoded = page.evaluate("""async () => {
        const svg = document.querySelector('#stall-qr svg');
        const img = new Image();
        img.src = 'data:image/svg+xml;charset=utf-8,' + encodeURIComponent(svg.outerHTML);
        await img.decode();
        const canvas = document.createElement('canvas');
        canvas.width = img.width; canvas.height = img.height;
        const ctx = canvas.getContext('2d');
        ctx.drawImage(img, 0, 0);
        const data = ctx.getImageData(0, 0, canvas.width, canvas.height);
        const found = jsQR(data.data, data.width, data.height);
        return found && found.data; }""")
    assert decoded == url
    assert outside == []
    _shot(page, "stall")
    page.context.close()
    empty = requests.get(f"{system['consumer']}/stall/nobody-here?lang=en", timeout=10)
    assert empty.status_code == 200
    assert 'id="no-stock"' in empty.text and "No stock on record today." in empty.text


def test_recalled_lot_shows_the_warning_on_every_affected_trace(browser, system):
    bridge = system["bridge"]
    response = requests.post(f"{bridge}/v1/lots/F-1119/tests", json={
        "result": "fail", "inspector": "inspector-07", "method": "enzyme inhibition",
        "values": {"organophosphate_inhibition_pct": 62}, "note": "pesticide residue"},
        timeout=10)
    assert response.status_code == 201, response.text
    for code in system["codes"]:
        wait_for_trace(bridge, code, predicate=lambda a: bool(a.get("recalls")))
    page, _ = _open(browser, f"{system['consumer']}/trace/{system['codes'][2]}")
    warning = page.inner_text("#recall-warning")
    assert "Recall warning" in warning and "pesticide residue" in warning
    assert "F-1119" in warning and "大白菜" in warning
    assert _verify_state(page) == "verified"
    assert "Fail" in page.inner_text("#timeline")
    _shot(page, "trace-recall")
    page.context.close()
    zh, _ = _open(browser, f"{system['consumer']}/trace/{system['codes'][0]}", lang="zh-CN")
    assert "召回警告" in zh.inner_text("#recall-warning")
    zh.context.close()
    assert FARM.org == "production_base"
