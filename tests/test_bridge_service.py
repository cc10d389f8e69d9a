"""The bridge as its own process on a real Mosquitto: MQTT intake acknowledged only once on
the ledger, idempotent redelivery, crash and restart without loss, the ledger CLI."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import paho.mqtt.client as mqtt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from ledger_files import edit_record

from ledger_bridge.sample_trades import Seller, line, make_trade
from market_protocol import signing
from market_protocol.topics import TRADES_TOPIC
from service_base.testing import ServiceProcess, free_port, tracepay_command, wait_until

pytestmark = pytest.mark.slow  # bridge processes

KEY = Ed25519PrivateKey.generate()
STALL = Seller("stall-9", "Stall Nine", "retail_market", "dev-9")


def publish(port: int, payloads: list[bytes]) -> None:
    """Publish with QoS 1 and wait for every PUBACK (the broker then owns the messages)."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="test-gateway",
                         protocol=mqtt.MQTTv311)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        infos = [client.publish(TRADES_TOPIC, payload, qos=1) for payload in payloads]
        for info in infos:
            info.wait_for_publish(15)
    finally:
        client.disconnect()
        client.loop_stop()


def health(url: str) -> dict:
    return requests.get(f"{url}/healthz", timeout=5).json()


class _Keys(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        body = json.dumps({"gateway_public_key_pem": signing.public_key_pem(KEY),
                           "gateway_public_key_raw": signing.public_key_raw_b64(KEY)}).encode()
        self.send_response(200 if self.path == "/v1/keys" else 404)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def late_gateway():
    """A gateway key endpoint that comes up a second after the bridge starts."""
    port = free_port()
    servers: list[ThreadingHTTPServer] = []

    def serve_later() -> None:
        time.sleep(1.0)
        server = ThreadingHTTPServer(("127.0.0.1", port), _Keys)
        servers.append(server)
        server.serve_forever()

    threading.Thread(target=serve_later, daemon=True).start()
    yield f"http://127.0.0.1:{port}"
    wait_until(lambda: servers, 5, "key server")
    servers[0].shutdown()


def bridge_process(tmp_path, broker_port: int, gateway_url: str, http_port: int):
    argv = tracepay_command("bridge", "--port", str(http_port), "--data-dir",
                            str(tmp_path / "bridge"), "--mqtt-host", "127.0.0.1",
                            "--mqtt-port", str(broker_port), "--gateway-url", gateway_url)
    return ServiceProcess(argv, log_path=tmp_path / "bridge.log",
                          health_url=f"http://127.0.0.1:{http_port}/healthz",
                          env={"TRACEPAY_BRIDGE_BLOCK_TIMEOUT_S": "0.05"})


def test_mqtt_intake_survives_a_crash_and_the_cli_verifies(tmp_path, mqtt_broker, late_gateway):
    http_port = free_port()
    url = f"http://127.0.0.1:{http_port}"
    trades = [make_trade(KEY, STALL, seq, [line("cabbage", 500 + seq)], at_ms=1_000 + seq)
              for seq in range(1, 31)]
    process = bridge_process(tmp_path, mqtt_broker.port, late_gateway, http_port).start()
    try:
        wait_until(lambda: health(url)["mqtt"]["connected"], message="bridge MQTT session")
        first = [json.dumps(t).encode() for t in trades[:20]]
        publish(mqtt_broker.port, first + first[:5] + [b"not json at all"])
        wait_until(lambda: health(url)["trades"] == 20 and health(url)["rejected"] == 1,
                   message="20 trades and 1 rejection")
        wait_until(lambda: health(url)["mqtt"]["acked"] == 26, message="all messages acked")
        process.kill()  # a crash: no shutdown hooks run
        publish(mqtt_broker.port, [json.dumps(t).encode() for t in trades[20:]])
        process.start()
        wait_until(lambda: health(url)["trades"] == 30, message="trades sent while down")
        assert health(url)["rejected"] == 1
        body = requests.get(f"{url}/v1/trace/{trades[25]['trace_code']}", timeout=5).json()
        assert body["record"]["trade_id"] == trades[25]["trade_id"]
    finally:
        process.stop()
    data_dir = str(tmp_path / "bridge")
    trust = str(tmp_path / "ledger-trust.json")
    pinned = subprocess.run(tracepay_command("ledger", "trust", "--data-dir", data_dir,
                                             "--out", trust),
                            capture_output=True, text=True, timeout=120)
    assert pinned.returncode == 0, pinned.stderr
    verified = subprocess.run(tracepay_command("ledger", "verify", "--data-dir", data_dir,
                                               "--trust", trust),
                              capture_output=True, text=True, timeout=120)
    assert verified.returncode == 0, verified.stderr
    assert json.loads(verified.stdout)["ok"] is True
    head = json.loads(subprocess.run(tracepay_command("ledger", "head", "--data-dir", data_dir),
                                     capture_output=True, text=True, timeout=60).stdout)
    assert head["height"] >= 1 and head["trades"] == 30 * 3 + 1
    shown = subprocess.run(tracepay_command("ledger", "show", "--data-dir", data_dir,
                                            trades[3]["trade_id"]),
                           capture_output=True, text=True, timeout=60)
    assert json.loads(shown.stdout)["leaf"]["record_id"] == trades[3]["trade_id"]
    # Edit one off-chain record on one node: verify must fail and name it.
    node = tmp_path / "bridge" / "ledger" / "retail_market" / "ledger.sqlite"
    edit_record(node, trades[7]["trade_id"],
                lambda body: body.replace(b"Stall Nine", b"Stall Evil"))
    tampered = subprocess.run(tracepay_command("ledger", "verify", "--data-dir", data_dir,
                                               "--trust", trust),
                              capture_output=True, text=True, timeout=120)
    assert tampered.returncode == 1
    assert trades[7]["trade_id"] in tampered.stdout + tampered.stderr


def test_bridge_refuses_to_start_without_a_gateway_key(tmp_path):
    result = subprocess.run(tracepay_command("bridge", "--data-dir", str(tmp_path)),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "--gateway-url or --gateway-public-key" in result.stderr
