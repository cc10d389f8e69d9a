"""The terminal against the real gateway process: enrolment claim, sales over the real
broker, and a refund request whose MAC and fields the gateway checks."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import time

import pytest
import requests

from market_protocol import PAYMENT_RESULT_SCHEMA, mac_record
from pos_terminal import Terminal
from service_base.testing import ServiceProcess, free_port, tracepay_command


@pytest.fixture
def gateway(mqtt_broker, tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = ServiceProcess(
        tracepay_command("gateway", "--port", str(port), "--data-dir", str(tmp_path / "gw"),
                         "--public-url", url, "--platform-url", "http://127.0.0.1:9",
                         "--no-platform-auto-register", "--mqtt-host", "127.0.0.1",
                         "--mqtt-port", str(mqtt_broker.port), "--manager-user", "manager",
                         "--manager-password", "correct-horse-battery"),
        log_path=tmp_path / "gateway.log", health_url=f"{url}/healthz")
    with process:
        yield {"url": url, "data_dir": tmp_path / "gw", "process": process}


def enrol(gateway) -> dict:
    response = requests.post(f"{gateway['url']}/v1/devices",
                             auth=("manager", "correct-horse-battery"), timeout=10,
                             json={"merchant_id": "stall-7", "merchant_name": "Li's greens",
                                   "org": "retail_market"})
    assert response.status_code == 201, response.text
    return response.json()


def run_terminal(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(tracepay_command("terminal", "--headless", *args),
                          capture_output=True, text=True, timeout=120)


def test_claim_then_sales_reach_the_gateway(gateway, tmp_path):
    issued = enrol(gateway)
    data_dir = str(tmp_path / "t")
    first = run_terminal("--data-dir", data_dir, "--enrol-code", issued["enrolment_code"],
                         "--gateway-url", gateway["url"], "--drain-timeout", "0")
    assert first.returncode == 0, first.stderr
    config = json.loads((tmp_path / "t" / "terminal.json").read_text())
    assert config["device_id"] == issued["device_id"]
    key_hex = (tmp_path / "t" / "device.key").read_text().strip()
    assert key_hex not in first.stderr + first.stdout

    again = run_terminal("--data-dir", str(tmp_path / "t2"), "--enrol-code",
                         issued["enrolment_code"], "--gateway-url", gateway["url"])
    assert again.returncode == 1 and "(410)" in again.stderr

    sim = run_terminal("--data-dir", data_dir, "--simulate-sales", "3", "--drain-timeout", "30")
    assert sim.returncode == 0, sim.stderr
    done = json.loads(sim.stdout.splitlines()[-1])
    assert done["queued"] == 0 and done["charged"] == 3
    charged = [json.loads(line) for line in sim.stdout.splitlines()[:3]]
    deadline = time.monotonic() + 30
    rows = []
    while time.monotonic() < deadline:
        with sqlite3.connect(tmp_path / "gw" / "gateway.sqlite3") as db:
            rows = db.execute("SELECT sale_id, seq FROM sales WHERE device_id = ? ORDER BY seq",
                              (issued["device_id"],)).fetchall()
        if len(rows) == 3:
            break
        time.sleep(0.2)
    assert rows == [(e["sale_id"], e["seq"]) for e in charged]


def test_refund_request_passes_the_gateways_mac_and_schema_checks(gateway, tmp_path):
    issued = enrol(gateway)
    data_dir = tmp_path / "t"
    assert run_terminal("--data-dir", str(data_dir), "--enrol-code", issued["enrolment_code"],
                        "--gateway-url", gateway["url"], "--drain-timeout", "0").returncode == 0
    from pos_terminal import DEFAULT_PRODUCTS, Cart

    with Terminal.open(data_dir) as term:
        cart = Cart()
        cart.add(DEFAULT_PRODUCTS[0], weight_g=1000)
        sale = term.charge(cart, render_png=False).sale
        # The terminal believes the sale paid (a result MACed with its own key); the
        # gateway knows no such payment, so it must answer unknown_payment — which it can
        # only do after the request's schema and MAC passed.
        result = {"schema": PAYMENT_RESULT_SCHEMA, "payment_id": "p-local", "seq": sale["seq"],
                  "device_id": term.device_id, "status": "paid", "amount_fen": 300,
                  "currency": "CNY", "channel": "sandbox", "channel_txn_id": None,
                  "trace_code": None, "updated_at_ms": 1, "mac": ""}
        result["mac"] = mac_record(result, term.device_key)
        term.outbox.record_result(result)
        answer = term.request_refund(sale["sale_id"], 100, "bruised")
    assert answer["state"] == "refused"
    assert json.loads(answer["answer"])["error"] == "unknown_payment"
