"""The trace page trusts only keys pinned by the site, never the keys of the bridge it reads.

A fake bridge (a real bridge process run by an attacker, with keys of its own) serves a
forged record: the stall's cabbage at twice the weight, in a block its own keys signed.
Consumer apps run as processes and the pages are opened in headless Chromium: pinned to
the genuine trust file the page reads Tampered; with no trust file it says nothing was
checked; it never reads Verified. The genuine bridge's page, pinned by default the way
a deployment and the demo set it up, reads Verified; the same genuine proofs relayed by a
fake bridge (``fake_bridge.py``) without their record bytes read Not verified, and with
only two of the four signatures Tampered.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from service_base.testing import ServiceProcess, free_port, tracepay_command

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from consumer_scenario import Market, trace_services, wait_for_trace  # noqa: E402

pytestmark = pytest.mark.slow  # consumer and bridge processes

STATES = "['verified','tampered','unavailable','unverified','none']"


def _load(market: Market, bridge_url: str, weight_g: int) -> str:
    """The market's trades, with one shopper's cabbage of ``weight_g``; its trace code."""
    market.register_parties(bridge_url)
    trades = market.supply_trades() + [market.shopper_trade(1, weight_g=weight_g)]
    for trade in trades:
        response = requests.post(f"{bridge_url}/v1/trades", json=trade, timeout=10)
        assert response.status_code == 200, response.text
    code = market.shopper_codes[-1]
    wait_for_trace(bridge_url, code, predicate=lambda answer: bool(answer.get("proofs")))
    return code


@pytest.fixture(scope="module")
def markets(tmp_path_factory):
    root = tmp_path_factory.mktemp("pinned-keys")
    key = Ed25519PrivateKey.generate()
    (root / "real").mkdir()
    (root / "fake").mkdir()
    with trace_services(root / "real", key) as (real_bridge, real_consumer), \
            trace_services(root / "fake", key) as (fake_bridge, _):
        real = Market(key)
        real_code = _load(real, real_bridge, weight_g=1250)
        forged_code = _load(Market(key, today_ms=real.today_ms), fake_bridge, weight_g=2500)
        yield {"root": root, "real_bridge": real_bridge, "real_consumer": real_consumer,
               "fake_bridge": fake_bridge, "real_code": real_code, "forged_code": forged_code,
               "trust": root / "real" / "ledger-trust.json"}


def _state(browser, url: str) -> tuple[str, str]:
    context = browser.new_context(locale="en-US", extra_http_headers={"Accept-Language": "en"})
    page = context.new_page()
    try:
        page.goto(url, wait_until="load")
        page.wait_for_function(f"() => {STATES}.includes("
                               "document.getElementById('verify-status').dataset.state)",
                               timeout=15_000)
        return (page.get_attribute("#verify-status", "data-state"),
                page.inner_text("#verify-status"))
    finally:
        context.close()


def _consumer(markets: dict, name: str, env: dict[str, str]) -> tuple[ServiceProcess, str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = ServiceProcess(tracepay_command(
        "consumer", "--port", str(port), "--bridge-url", markets["fake_bridge"],
        "--gateway-url", f"http://127.0.0.1:{free_port()}"),
        log_path=markets["root"] / f"{name}.log", health_url=f"{url}/healthz", env=env)
    return process, url


def test_the_fake_bridge_serves_a_forged_record_under_keys_of_its_own(markets):
    forged = requests.get(f"{markets['fake_bridge']}/v1/trace/{markets['forged_code']}",
                          timeout=10).json()
    assert '"weight_g":2500' in forged["proofs"][0]["record_canonical"]
    fake_keys = requests.get(f"{markets['fake_bridge']}/v1/keys", timeout=10).json()["keys"]
    real_keys = requests.get(f"{markets['real_bridge']}/v1/keys", timeout=10).json()["keys"]
    assert set(fake_keys) == set(real_keys)
    assert all(fake_keys[signer] != real_keys[signer] for signer in real_keys)


def test_the_genuine_bridge_reads_verified_with_the_pinned_keys(browser, markets):
    state, _ = _state(browser, f"{markets['real_consumer']}/trace/{markets['real_code']}")
    assert state == "verified"


def test_pinned_to_the_genuine_keys_the_forged_record_reads_tampered(browser, markets):
    process, url = _consumer(markets, "pinned",
                             {"TRACEPAY_CONSUMER_LEDGER_KEYS_FILE": str(markets["trust"])})
    with process:
        state, text = _state(browser, f"{url}/trace/{markets['forged_code']}")
    assert state == "tampered"
    assert "bad signature by orderer" in text and "bad signature by retail_market" in text


def test_without_pinned_keys_the_page_checks_nothing_and_says_so(browser, markets):
    process, url = _consumer(markets, "unpinned", {"TRACEPAY_CONSUMER_LEDGER_KEYS_FILE": ""})
    with process:
        state, text = _state(browser, f"{url}/trace/{markets['forged_code']}")
        html = requests.get(f"{url}/trace/{markets['forged_code']}", timeout=10).text
    assert state == "unavailable"
    assert "nothing on this page was checked" in text
    fake_keys = requests.get(f"{markets['fake_bridge']}/v1/keys", timeout=10).json()["keys"]
    assert not any(key in html for key in fake_keys.values())  # the bridge's keys never used


@pytest.mark.parametrize(("how", "state", "reason"), [
    ("strip_bytes", "unverified", "the record's bytes are missing, so the record is not proven"),
    # a relay stripping signatures proves nothing changed, and nothing is proven either
    ("two_signers", "unverified", "block is not signed by production_base"),
])
def test_genuine_proofs_altered_in_transit_never_read_verified(browser, markets, how, state,
                                                               reason):
    relay_port = free_port()
    relay = ServiceProcess([sys.executable, str(ROOT / "tests" / "fake_bridge.py"), "--port",
                            str(relay_port), "--upstream", markets["real_bridge"], "--alter", how],
                           log_path=markets["root"] / f"relay-{how}.log",
                           health_url=f"http://127.0.0.1:{relay_port}/healthz")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    consumer = ServiceProcess(tracepay_command(
        "consumer", "--port", str(port), "--bridge-url", f"http://127.0.0.1:{relay_port}",
        "--gateway-url", f"http://127.0.0.1:{free_port()}"),
        log_path=markets["root"] / f"consumer-{how}.log", health_url=f"{url}/healthz",
        env={"TRACEPAY_CONSUMER_LEDGER_KEYS_FILE": str(markets["trust"])})
    with relay, consumer:
        seen, text = _state(browser, f"{url}/trace/{markets['real_code']}")
    assert seen == state
    assert reason in text


def test_a_block_signed_by_every_node_moments_later_turns_the_page_verified(browser, markets):
    """The first answer lacks two organisations' signatures (their nodes had not signed yet):
    the page says "not verified", looks again by itself and then reads Verified."""
    relay_port = free_port()
    relay = ServiceProcess([sys.executable, str(ROOT / "tests" / "fake_bridge.py"), "--port",
                            str(relay_port), "--upstream", markets["real_bridge"], "--alter",
                            "two_signers_first"],
                           log_path=markets["root"] / "relay-first.log",
                           health_url=f"http://127.0.0.1:{relay_port}/healthz")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    consumer = ServiceProcess(tracepay_command(
        "consumer", "--port", str(port), "--bridge-url", f"http://127.0.0.1:{relay_port}",
        "--gateway-url", f"http://127.0.0.1:{free_port()}"),
        log_path=markets["root"] / "consumer-first.log", health_url=f"{url}/healthz",
        env={"TRACEPAY_CONSUMER_LEDGER_KEYS_FILE": str(markets["trust"])})
    with relay, consumer:
        context = browser.new_context(locale="en-US",
                                      extra_http_headers={"Accept-Language": "en"})
        page = context.new_page()
        try:
            page.goto(f"{url}/trace/{markets['real_code']}", wait_until="load")
            page.wait_for_function("() => document.getElementById('verify-status')"
                                   ".dataset.state === 'unverified'", timeout=15_000)
            assert "block is not signed by production_base" in page.inner_text(
                "#verify-status")
            page.wait_for_function("() => document.getElementById('verify-status')"
                                   ".dataset.state === 'verified'", timeout=20_000)
            assert "not signed" not in page.inner_text("#verify-status")
        finally:
            context.close()

