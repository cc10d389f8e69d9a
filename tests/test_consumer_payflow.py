"""The shopper's pay flow clicked through in headless Chromium, every part a real process.

Mosquitto, the sandbox payment platform, the gateway (with ``--consumer-url``), the ledger
bridge and the consumer app run as the demo runs them (``tracepay.demo_system.DemoSystem``), with
the demo's farm → wholesaler → stall supply chain paid first; a headless terminal at the
stall then charges one sale. The phone then opens the QR's URL, sees items and origin
on the consumer's pay page, taps Pay, pays at the platform's checkout, lands on the receipt,
follows the trace link to a Verified trace, and after an inspector fails the sale's lot sees
the recall warning on its receipt.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests

from service_base.testing import launch_chromium, screenshot_dir, tracepay_command

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = screenshot_dir()
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from tracepay.demo_market import STALL, seed_supply_chain
    from tracepay.demo_system import DemoSystem

    system = DemoSystem(tmp_path_factory.mktemp("payflow"))
    try:
        system.start()
        # The stall's stock comes from a farm through a wholesaler, paid the same way.
        seed_supply_chain(system, system.bridge_admin_token)
        enrolment = system.enrol(STALL.enrolment_body())
        yield system, enrolment
    finally:
        system.stop()


@pytest.fixture(scope="module")
def charged(demo):
    """One sale charged by a headless terminal; yields its ``charged`` event."""
    system, enrolment = demo
    log = (system.data_dir / "terminal.log").open("ab")
    terminal = subprocess.Popen(
        tracepay_command("terminal", "--headless", "--data-dir", str(system.data_dir / "t"),
                         "--enrol-code", enrolment["enrolment_code"], "--gateway-url",
                         system.urls["gateway"], "--simulate-sales", "1",
                         "--wait-results", "120"),
        stdout=subprocess.PIPE, stderr=log, text=True, start_new_session=True)
    try:
        event = None
        deadline = time.monotonic() + 60
        while event is None and time.monotonic() < deadline:
            line = terminal.stdout.readline()
            if not line:
                break
            if line.startswith("{") and json.loads(line).get("event") == "charged":
                event = json.loads(line)
        assert event is not None, (system.data_dir / "terminal.log").read_text()[-2000:]
        yield event
    finally:
        if terminal.poll() is None:
            os.killpg(terminal.pid, signal.SIGTERM)
            try:
                terminal.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(terminal.pid, signal.SIGKILL)
                terminal.wait()
        log.close()


@pytest.fixture(scope="module")
def phone():
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        context = chromium.new_context(viewport=PHONE, locale="en-US",
                                       extra_http_headers={"Accept-Language": "en-US"})
        yield context.new_page()
        chromium.close()


def _signed_by_every_node(bridge_url: str, code: str) -> bool:
    """The trace carries its trade's proof, in a block every organisation signed."""
    from market_protocol import ORGS

    answer = requests.get(f"{bridge_url}/v1/trace/{code}", timeout=5)
    if answer.status_code != 200:
        return False
    trace = answer.json()
    return any(proof["leaf"]["record_id"] == trace["record"]["trade_id"] and
               {s["signer"] for s in proof["block"]["signatures"]} >= set(ORGS)
               for proof in trace["proofs"])


def _reload_until(page, predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out on {page.url}:\n{page.inner_text('main')[:800]}")
        time.sleep(0.5)
        page.reload(wait_until="load")


def _shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"consumer-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size <= 300 * 1024


def test_shopper_scans_pays_and_gets_a_verified_trace(demo, charged, phone):
    system, _ = demo
    consumer = system.urls["consumer"]

    # Scan: the gateway checks the QR and hands the phone to the consumer's pay page.
    phone.goto(charged["qr_url"], wait_until="load")
    assert phone.url.startswith(f"{consumer}/pay/"), phone.url
    payment_id = phone.url.split("/pay/")[1].split("?")[0]
    _reload_until(phone, lambda: phone.locator("table.items tbody tr").count() > 0)
    assert phone.inner_text("#merchant-name") == "Auntie Li's Vegetables"
    total = f"¥{charged['total_fen'] // 100}.{charged['total_fen'] % 100:02d}"
    assert phone.inner_text("#amount") == total
    assert phone.inner_text("#status") == "Awaiting payment"
    items = phone.inner_text("table.items")
    assert "Origin" in items
    assert phone.get_attribute("#stall-link", "href").startswith("/stall/stall-a12")
    _shot(phone, "pay")

    # A receipt opened before paying offers to pay and promises no trace yet.
    unpaid = requests.get(f"{consumer}/receipt/{payment_id}?lang=en", timeout=10).text
    assert "Awaiting payment" in unpaid and 'id="pay-button"' in unpaid
    assert 'id="trace-code"' not in unpaid and "<svg" not in unpaid

    # Pay at the platform's hosted checkout, as the shopper would.
    phone.click("#pay-button")
    phone.wait_for_selector("#pay")
    phone.fill("#payer_id", "alipay-shopper-88")
    phone.click("#pay")
    phone.wait_for_url(f"{consumer}/receipt/{payment_id}*")
    _reload_until(phone, lambda: phone.get_attribute("#status", "data-status") == "paid")
    assert phone.inner_text("#amount") == total
    code = phone.inner_text("#trace-code")
    assert code == charged["trace_code"]
    assert phone.locator("#trace-qr svg").count() == 1
    assert phone.locator("#recall-warning").count() == 0

    # The receipt's QR is the trace URL (decoded by the same jsQR the scan page uses).
    phone.add_script_tag(url=f"{consumer}/static/vendor/jsQR.min.js")
    decoded = phone.evaluate("""async () => {
        const svg = document.querySelector('#trace-qr svg');
        const img = new Image();
        img.src = 'data:image/svg+xml;charset=utf-8,' + encodeURIComponent(svg.outerHTML);
        await img.decode();
        const c = document.createElement('canvas');
        c.width = img.width; c.height = img.height;
        const ctx = c.getContext('2d');
        ctx.drawImage(img, 0, 0);
        const d = ctx.getImageData(0, 0, c.width, c.height);
        const found = jsQR(d.data, d.width, d.height);
        return found && found.data; }""")
    assert decoded == f"{consumer}/trace/{code}"

    # The sale reaches the ledger (a block signed by every organisation's node); the
    # receipt's trace link opens a Verified trace.
    deadline = time.monotonic() + 60
    while not _signed_by_every_node(system.urls["bridge"], code):
        assert time.monotonic() < deadline, "sale never reached the ledger"
        time.sleep(0.3)
    phone.reload(wait_until="load")
    _shot(phone, "receipt")
    phone.click("#trace-link")
    phone.wait_for_url(f"{consumer}/trace/{code}*")
    phone.wait_for_function("() => ['verified','tampered','unavailable'].includes("
                            "document.getElementById('verify-status').dataset.state)")
    assert phone.get_attribute("#verify-status", "data-state") == "verified"
    assert "Auntie Li's Vegetables" in phone.inner_text("#timeline")
    stages = phone.eval_on_selector_all("#timeline li", "els => els.map(e => e.dataset.stage)")
    assert stages == ["production_base", "wholesale_market", "retail_market"]
    assert "Shouguang Green Farm Co-op" in phone.inner_text("#timeline")
    _shot(phone, "trace-payflow")

    # An inspector fails the lot this sale came from: the receipt now warns.
    lot = requests.get(f"{system.urls['bridge']}/v1/trace/{code}",
                       timeout=5).json()["record"]["lines"][0]["lot_id"]
    test = requests.post(f"{system.urls['bridge']}/v1/lots/{lot}/tests", json={
        "result": "fail", "inspector": "inspector-07", "note": "clenbuterol positive"},
        headers={"Authorization": f"Bearer {system.bridge_admin_token}"}, timeout=10)
    assert test.status_code == 201, test.text
    phone.goto(f"{consumer}/receipt/{payment_id}", wait_until="load")
    assert "clenbuterol positive" in phone.inner_text("#recall-warning")
    _shot(phone, "receipt-recall")


def test_pay_page_of_a_paid_order_offers_the_receipt_not_pay(demo, charged, phone):
    system, _ = demo
    landing = requests.get(charged["qr_url"], headers={"Accept": "application/json"},
                           timeout=10)
    payment_id = landing.json().get("payment_id") if landing.status_code == 200 else None
    if payment_id is None:  # the gateway refuses a paid QR (409 already_paid): read its id
        payment_id = phone.url.split("/receipt/")[-1].split("?")[0]
    page = requests.get(f"{system.urls['consumer']}/pay/{payment_id}?lang=en", timeout=10)
    assert page.status_code == 200
    assert 'id="pay-button"' not in page.text and 'id="receipt-link"' in page.text
    unknown = requests.get(f"{system.urls['consumer']}/receipt/p000000000000000000000000",
                           headers={"Accept": "application/json"}, timeout=10)
    assert unknown.status_code == 404 and unknown.json()["error"] == "unknown_payment"
