"""The terminal charging a shopper's payment code (付款码) through the real gateway process
and the real sandbox platform process: paid at once, paid after the shopper typed their
password, declined; the sale turns paid only on the gateway's MACed payment result."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests
from test_gateway_support import Platform, platform  # noqa: F401 - fixture
from test_terminal_gateway import enrol, run_terminal

from pos_terminal import DEFAULT_PRODUCTS, Cart, Terminal, TerminalError
from pos_terminal.payer_codes import looks_like_payer_code
from service_base.testing import ServiceProcess, free_port, tracepay_command


@pytest.fixture
def gateway(mqtt_broker, platform: Platform, tmp_path: Path):  # noqa: F811
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = ServiceProcess(
        tracepay_command("gateway", "--port", str(port), "--data-dir", str(tmp_path / "gw"),
                         "--public-url", url, "--platform-url", platform.url,
                         "--mqtt-host", "127.0.0.1", "--mqtt-port", str(mqtt_broker.port),
                         "--manager-user", "manager",
                         "--manager-password", "correct-horse-battery"),
        log_path=tmp_path / "gateway.log", health_url=f"{url}/healthz",
        env={"TRACEPAY_GATEWAY_PLATFORM_APP_ID": f"gw-{port}",
             "TRACEPAY_GATEWAY_QUERY_AFTER_S": "0", "TRACEPAY_GATEWAY_QUERY_INTERVAL_S": "0",
             "TRACEPAY_GATEWAY_SWEEP_INTERVAL_S": "0.3"})
    with process:
        yield {"url": url, "data_dir": tmp_path / "gw", "process": process}


@pytest.fixture
def terminal(gateway, tmp_path: Path):
    issued = enrol(gateway)
    data_dir = tmp_path / "t"
    enrolled = run_terminal("--data-dir", str(data_dir), "--enrol-code",
                            issued["enrolment_code"], "--gateway-url", gateway["url"],
                            "--drain-timeout", "0")
    assert enrolled.returncode == 0, enrolled.stderr
    with Terminal.open(data_dir) as term:
        yield term


def _code(platform: Platform, behaviour: str) -> str:  # noqa: F811
    issued = requests.post(f"{platform.url}/sandbox/payer-codes", timeout=10,
                           json={"payer_id": "wallet-buyer-3", "behaviour": behaviour})
    assert issued.status_code == 201, issued.text
    return issued.json()["auth_code"]


def _sale(term: Terminal) -> str:
    cart = Cart()
    cart.add(DEFAULT_PRODUCTS[0], weight_g=1000)
    return term.charge(cart, render_png=False).sale["sale_id"]


def _paid_soon(term: Terminal, sale_id: str, timeout: float = 30) -> str | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        term.refresh_results()
        status = term.sale(sale_id).payment_status
        if status == "paid":
            return status
        time.sleep(0.3)
    return term.sale(sale_id).payment_status


def test_a_scanned_code_that_pays_at_once_marks_the_sale_paid(terminal: Terminal,
                                                               platform: Platform) -> None:  # noqa: F811
    sale_id = _sale(terminal)
    code = _code(platform, "pay")
    assert looks_like_payer_code(code)
    outcome = terminal.charge_payer_code(sale_id, code)
    assert outcome.state == "paid" and outcome.payment_id, outcome
    assert _paid_soon(terminal, sale_id) == "paid"
    assert terminal.sale(sale_id).payment_channel == "sandbox"
    with pytest.raises(TerminalError, match="already paid"):
        terminal.charge_payer_code(sale_id, _code(platform, "pay"))


def test_a_shopper_typing_the_password_is_waited_for(terminal: Terminal,
                                                     platform: Platform) -> None:  # noqa: F811
    sale_id = _sale(terminal)
    code = _code(platform, "password")
    outcome = terminal.charge_payer_code(sale_id, code)
    assert outcome.state == "waiting", outcome
    terminal.refresh_results()
    assert terminal.sale(sale_id).payment_status in (None, "pending")
    confirmed = requests.post(f"{platform.url}/sandbox/payer-codes/{code}/confirm", timeout=10)
    assert confirmed.status_code == 200, confirmed.text
    assert _paid_soon(terminal, sale_id) == "paid"  # the gateway's sweeper asked


def test_a_declined_code_leaves_the_sale_unpaid_and_bad_scans_are_refused(
        terminal: Terminal, platform: Platform) -> None:  # noqa: F811
    sale_id = _sale(terminal)
    outcome = terminal.charge_payer_code(sale_id, _code(platform, "decline"))
    assert outcome.state == "declined" and "declined" in outcome.message, outcome
    terminal.refresh_results()
    assert terminal.sale(sale_id).payment_status != "paid"
    with pytest.raises(TerminalError, match="not a payment code"):
        terminal.charge_payer_code(_sale(terminal), "6901234567892")  # a product's EAN
    with pytest.raises(TerminalError, match="no sale"):
        terminal.charge_payer_code("nope.1.x", _code(platform, "pay"))
