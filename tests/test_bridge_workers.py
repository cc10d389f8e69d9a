"""``tracepay bridge --workers 2``: reader processes answer, one writer process writes."""

from __future__ import annotations

import time

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger_bridge.sample_trades import Seller, line, make_trade
from market_protocol import signing
from service_base.testing import ServiceProcess, free_port, tracepay_command

pytestmark = pytest.mark.slow  # bridge processes

KEY = Ed25519PrivateKey.generate()
STALL = Seller("stall-w", "Stall W", "retail_market", "dev-w")


def test_workers_read_while_one_writer_writes(tmp_path):
    pem = tmp_path / "gateway.pem"
    pem.write_text(signing.public_key_pem(KEY))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = tracepay_command("bridge", "--port", str(port), "--data-dir", str(tmp_path / "b"),
                            "--gateway-public-key", str(pem), "--workers", "2")
    with ServiceProcess(argv, log_path=tmp_path / "bridge.log", health_url=f"{url}/healthz",
                        env={"TRACEPAY_BRIDGE_BLOCK_TIMEOUT_S": "0.05",
                             "TRACEPAY_BRIDGE_TRADES_TOKEN": "feed"},
                        startup_timeout=120) as process:
        health = requests.get(f"{url}/healthz", timeout=10).json()
        assert health["role"] == "reader" and health["writer"].startswith("http://127.0.0.1:")
        trades = [make_trade(KEY, STALL, seq, [line("cabbage", 400 + seq)], at_ms=seq)
                  for seq in range(1, 7)]
        auth = {"Authorization": "Bearer feed"}
        refused = requests.post(f"{url}/v1/trades", json=trades[0], timeout=30)
        assert refused.status_code == 401  # the token reaches the writer, which checks it
        for trade in trades:
            answer = requests.post(f"{url}/v1/trades", json=trade, timeout=30, headers=auth)
            assert answer.status_code == 200 and answer.json()["status"] == "accepted", \
                process.log_tail()
        assert requests.post(f"{url}/v1/trades", json=trades[0], timeout=30,
                             headers=auth).json()["status"] == "duplicate"
        forged = requests.post(f"{url}/v1/trades", json={**make_trade(
            KEY, STALL, 9, [line("tomato", 100)]), "gateway_sig": "A" * 86}, timeout=30,
            headers=auth)
        assert forged.status_code == 422 and forged.json()["error"] == "bad_signature"
        bad = requests.post(f"{url}/v1/trades", data=b"{", timeout=30,
                            headers={"Content-Type": "application/json", **auth})
        assert bad.status_code == 400 and bad.json()["error"] == "malformed_json"
        # every reader process must see every committed trade, whichever one answers
        deadline = time.monotonic() + 30
        for trade in trades:
            while True:
                response = requests.get(f"{url}/v1/trace/{trade['trace_code']}", timeout=10)
                if response.status_code == 200 or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            assert response.status_code == 200
            assert response.json()["proofs"][0]["leaf"]["record_id"] == trade["trade_id"]
        heads = {requests.get(f"{url}/v1/head", timeout=10).json()["trades"] for _ in range(6)}
        assert heads == {6}
        writer = requests.get(f"{health['writer']}/healthz", timeout=10).json()
        assert writer["role"] == "writer" and writer["trades"] == 6
