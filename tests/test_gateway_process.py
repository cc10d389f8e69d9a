"""The real ``tracepay gateway`` process (granian, 2 workers) with the sandbox platform and
Mosquitto: the device CLI, a full sale, and a gateway killed between charge and notify."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
import requests
from test_gateway_mqtt import Listener
from test_gateway_support import (  # noqa: F401 - fixtures
    MANAGER,
    Terminal,
    pay_at_checkout,
    platform,
)

from market_protocol import check_trade
from market_protocol.topics import TRADES_TOPIC, sales_topic
from service_base.testing import ServiceProcess, free_port, tracepay_command


class GatewayProcess:
    def __init__(self, tmp_path: Path, platform_url: str, broker) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = tmp_path / "gateway"
        self.argv = tracepay_command(
            "gateway", "--host", "127.0.0.1", "--port", str(self.port), "--data-dir",
            str(self.data_dir), "--public-url", self.url, "--platform-url", platform_url,
            "--mqtt-host", broker.host, "--mqtt-port", str(broker.port), "--manager-user",
            MANAGER[0], "--manager-password", MANAGER[1], "--workers", "2")
        self.log = tmp_path / "gateway.log"
        self.process = ServiceProcess(self.argv, log_path=self.log,
                                      health_url=f"{self.url}/healthz",
                                      startup_timeout=90,
                                      env={"TRACEPAY_GATEWAY_PLATFORM_APP_ID":
                                           f"gw-{self.port}"})

    def start(self) -> GatewayProcess:
        """Started, and its MQTT link subscribed: on a fresh broker, sales published before
        the gateway's first subscription would have no session to wait in."""
        self.process.start()
        http = requests.Session()
        http.trust_env = False
        deadline = time.monotonic() + 60
        while http.get(f"{self.url}/healthz", timeout=5).json()["mqtt"] != "subscribed":
            assert time.monotonic() < deadline, self.process.log_tail()
            time.sleep(0.1)
        return self


@pytest.fixture
def gateway_process(tmp_path: Path, platform, mqtt_broker):  # noqa: F811
    process = GatewayProcess(tmp_path, platform.url, mqtt_broker).start()
    yield process
    process.process.stop()


def _enrol_with_cli(url: str, device_id: str) -> dict:
    out = subprocess.run(tracepay_command(
        "device", "enrol", "--gateway-url", url, "--manager-user", MANAGER[0],
        "--manager-password", MANAGER[1], "--merchant-id", "stall-9", "--merchant-name",
        "Wang's fish", "--org", "retail_market", "--device-id", device_id),
        capture_output=True, text=True, timeout=60, check=True)
    return json.loads(out.stdout)


def test_full_sale_through_the_process_and_device_cli(gateway_process, mqtt_broker) -> None:
    import requests

    http = requests.Session()
    http.trust_env = False
    enrolled = _enrol_with_cli(gateway_process.url, "dev-proc-1")
    assert enrolled["device_id"] == "dev-proc-1"
    claim = http.post(f"{gateway_process.url}/v1/enrolments/{enrolled['enrolment_code']}/claim")
    assert claim.status_code == 200
    again = http.post(f"{gateway_process.url}/v1/enrolments/{enrolled['enrolment_code']}/claim")
    assert again.status_code == 410 and again.json()["error"] == "code_used"
    terminal = Terminal(claim.json())
    listener = Listener(mqtt_broker, TRADES_TOPIC)
    try:
        url, sale = terminal.charge()
        listener.publish(sales_topic(terminal.device_id), sale)
        payment = http.get(url, headers={"Accept": "application/json"}).json()
        assert payment["status"] == "pending"
        pay_at_checkout(payment["checkout_url"])
        trade = check_trade(listener.next(TRADES_TOPIC, timeout=30,
                                          where=lambda r: r["trade_id"] == sale["sale_id"]))
        assert trade["payment"]["amount_fen"] == sale["total_fen"]
    finally:
        listener.close()
    bad = subprocess.run(tracepay_command(
        "device", "revoke", "--gateway-url", gateway_process.url, "--manager-user",
        MANAGER[0], "--manager-password", "wrong", "dev-proc-1"),
        capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1
    assert "unauthorized" in bad.stderr
    rotated = subprocess.run(tracepay_command(
        "device", "rotate", "--gateway-url", gateway_process.url, "--manager-user",
        MANAGER[0], "--manager-password", MANAGER[1], "dev-proc-1"),
        capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(rotated.stdout)["key_version"] == 2
    assert (gateway_process.data_dir / "master.key").stat().st_mode & 0o777 == 0o600
    assert (gateway_process.data_dir / "gateway_ed25519.pem").stat().st_mode & 0o777 == 0o600
    log = gateway_process.log.read_text()
    master = (gateway_process.data_dir / "master.key").read_bytes().hex()
    assert "registered at" in log  # the log is really there and written
    for secret in (MANAGER[1], master, terminal.claim["device_key"],
                   terminal.claim["mqtt"]["password"]):
        assert secret not in log


def test_gateway_killed_between_charge_and_notify(gateway_process, mqtt_broker) -> None:
    """The platform keeps notifying until acknowledged; the restarted gateway records the
    payment once and publishes the trade."""
    import requests

    http = requests.Session()
    http.trust_env = False
    enrolled = _enrol_with_cli(gateway_process.url, "dev-proc-2")
    terminal = Terminal(http.post(
        f"{gateway_process.url}/v1/enrolments/{enrolled['enrolment_code']}/claim").json())
    listener = Listener(mqtt_broker, TRADES_TOPIC)
    try:
        url, sale = terminal.charge()
        listener.publish(sales_topic(terminal.device_id), sale)
        payment = http.get(url, headers={"Accept": "application/json"}).json()
        gateway_process.process.kill()
        pay_at_checkout(payment["checkout_url"])  # the shopper pays while we are down
        gateway_process.process.start()
        trade = listener.next(TRADES_TOPIC, timeout=40,
                              where=lambda r: r["trade_id"] == sale["sale_id"])
        assert trade["payment"]["payment_id"] == payment["payment_id"]
        final = http.get(f"{gateway_process.url}/v1/payments/{payment['payment_id']}").json()
        assert final["status"] == "paid"
        replay = http.get(url, headers={"Accept": "application/json"})
        assert replay.status_code == 409 and replay.json()["error"] == "already_paid"
    finally:
        listener.close()
