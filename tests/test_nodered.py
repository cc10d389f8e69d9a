"""The shipped Node-RED flow, in a real Node-RED, feeding a real bridge process.

Node-RED is installed from npm into ``test-artifacts/node-red`` once (cached across runs);
the test is skipped, saying why, only when node/npm are missing or npm cannot reach its
registry.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger_bridge.sample_trades import Seller, line, make_trade
from market_protocol import signing
from service_base.testing import ServiceProcess, free_port, tracepay_command, wait_for_http

ROOT = Path(__file__).resolve().parent.parent
FLOW_DIR = ROOT / "integrations" / "node-red"
CACHE = Path(os.environ.get("TRACEPAY_NODERED_CACHE", ROOT / "test-artifacts" / "node-red"))
RED_JS = CACHE / "node_modules" / "node-red" / "red.js"
VERSION = "~4.1"  # node-red 5 needs Node.js >= 22.9; Debian's Node 20 runs 4.1

KEY = Ed25519PrivateKey.generate()
TOKEN = "node-red-feed"
STALL = Seller("stall-nr", "Node-RED stall", "retail_market", "dev-nr")


def _install_node_red() -> None:
    if RED_JS.exists():
        return
    if not shutil.which("node") or not shutil.which("npm"):
        pytest.skip("node and npm are not installed, so Node-RED cannot be installed")
    CACHE.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(["npm", "install", "--prefix", str(CACHE), f"node-red@{VERSION}",
                             "--no-audit", "--no-fund", "--loglevel=error"],
                            capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        text = result.stderr + result.stdout
        if any(word in text for word in ("ENOTFOUND", "EAI_AGAIN", "ECONNREFUSED",
                                         "ETIMEDOUT", "network")):
            pytest.skip(f"npm registry unreachable, Node-RED not installed: {text[-300:]}")
        raise AssertionError(f"npm install node-red failed:\n{text[-2000:]}")
    assert RED_JS.exists(), "npm install finished but node-red/red.js is missing"


@pytest.fixture
def bridge(tmp_path):
    pem = tmp_path / "gateway.pem"
    pem.write_text(signing.public_key_pem(KEY))
    port = free_port()
    argv = tracepay_command("bridge", "--port", str(port), "--data-dir",
                            str(tmp_path / "bridge"), "--gateway-public-key", str(pem))
    with ServiceProcess(argv, log_path=tmp_path / "bridge.log",
                        health_url=f"http://127.0.0.1:{port}/healthz",
                        env={"TRACEPAY_BRIDGE_BLOCK_TIMEOUT_S": "0.05",
                             "TRACEPAY_BRIDGE_TRADES_TOKEN": TOKEN}):
        yield f"http://127.0.0.1:{port}"


@pytest.fixture
def node_red(tmp_path, bridge):
    _install_node_red()
    port = free_port()
    env = {"TRACEPAY_NODERED_PORT": str(port), "TRACEPAY_NODERED_DIR": str(tmp_path / "nr"),
           "TRACEPAY_BRIDGE_URL": bridge, "TRACEPAY_BRIDGE_TRADES_TOKEN": TOKEN}
    argv = ["node", str(RED_JS), "--settings", str(FLOW_DIR / "settings.js")]
    process = ServiceProcess(argv, log_path=tmp_path / "node-red.log", env=env,
                             startup_timeout=90)
    process.start()
    try:
        wait_for_http(f"http://127.0.0.1:{port}/admin/settings", 90, process.process)
        yield f"http://127.0.0.1:{port}", process
    finally:
        process.stop()


def test_flow_carries_trades_to_the_ledger(node_red, bridge):
    url, process = node_red
    flow = json.loads((FLOW_DIR / "flow.json").read_text())
    deployed = requests.post(f"{url}/admin/flows", json=flow, timeout=30,
                             headers={"Node-RED-Deployment-Type": "full"})
    assert deployed.status_code in (200, 204), deployed.text
    loaded = requests.get(f"{url}/admin/flows", timeout=10).json()
    assert {node["id"] for node in loaded} >= {"tracepay_trades_in", "tracepay_post"}
    trade = make_trade(KEY, STALL, 1, [line("cabbage", 1_800, unit="500g",
                                            unit_price_fen=150, name="大白菜")])
    answer = None
    for _ in range(50):  # the http-in route appears once the deploy has started the flow
        answer = requests.post(f"{url}/tracepay/trades", json=trade, timeout=30)
        if answer.status_code != 404:
            break
        time.sleep(0.1)
    assert answer.status_code == 200, f"{answer.text}\n{process.log_tail()}"
    body = answer.json()
    assert (body["trade_id"], body["status"]) == (trade["trade_id"], "accepted")
    # a stall selling cabbage it never bought through the bridge is a finding, not an error
    assert [f["unmatched"] for f in body["findings"]] == [1_800]
    again = requests.post(f"{url}/tracepay/trades", json=trade, timeout=30)
    assert again.json()["status"] == "duplicate"
    other = make_trade(KEY, STALL, 2, [line("tomato", 700)])
    forged = requests.post(f"{url}/tracepay/trades", json={**other, "gateway_sig": "A" * 86},
                           timeout=30)
    assert forged.status_code == 422 and forged.json()["error"] == "bad_signature"
    not_json = requests.post(f"{url}/tracepay/trades", data="hello", timeout=30,
                             headers={"Content-Type": "text/plain"})
    assert not_json.status_code == 400 and not_json.json()["error"] == "malformed_json"
    direct = requests.post(f"{bridge}/v1/trades", json=trade, timeout=30)
    assert direct.status_code == 401  # only the flow, which holds the token, gets through
    on_ledger = requests.get(f"{bridge}/v1/trace/{trade['trace_code']}", timeout=10).json()
    assert on_ledger["record"]["lines"][0]["weight_g"] == 1_800
    via_flow = requests.get(f"{url}/tracepay/trace/{trade['trace_code']}", timeout=30)
    assert via_flow.json()["record"]["trade_id"] == trade["trade_id"]
    assert requests.get(f"{bridge}/healthz", timeout=10).json()["trades"] == 1
