"""A gateway tier for tests: several real ``tracepay gateway`` processes on one real
PostgreSQL database, a real Mosquitto whose password and ACL files the gateways write,
and the sandbox platform as its own process. (No tests here.)

Every instance gets the same public URL, as behind a reverse proxy. It points at a port
nobody listens on, so the platform's own notifications never arrive: a payment is
settled by a notification a test sends, or by an instance's sweeper asking the platform.
"""

from __future__ import annotations

import queue
import secrets
import shutil
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import requests
from test_gateway_support import MANAGER, Terminal

from aggregation_gateway.key_files import MASTER_KEY_FILE, SIGNING_KEY_FILE
from market_protocol import canonical_json
from market_protocol.topics import sales_topic
from service_base.testing import ServiceProcess, free_port, tracepay_command
from tracepay.broker import Broker

BRIDGE_USER = ("tracepay-bridge", "br-" + secrets.token_hex(8))


def http_session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    return session


class Instance:
    """One ``tracepay gateway --instance-name <name>`` process."""

    def __init__(self, tier: GatewayTier, name: str, data_dir: Path,
                 extra_env: dict[str, str]) -> None:
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = data_dir
        self.public_url = tier.public_url
        self.argv = tracepay_command(
            "gateway", "--instance-name", name, "--host", "127.0.0.1",
            "--port", str(self.port), "--data-dir", str(data_dir),
            "--database-url", tier.database_url, "--public-url", tier.public_url,
            "--platform-url", tier.platform_url, "--mqtt-host", tier.broker.host,
            "--mqtt-port", str(tier.broker.port), "--manager-user", MANAGER[0],
            "--manager-password", MANAGER[1], "--workers", "1",
            "--mosquitto-password-file", str(tier.password_file),
            "--mosquitto-acl-file", str(tier.acl_file),
            "--mosquitto-pid-file", str(tier.broker.data_dir / "broker.pid"))
        self.env = {"TRACEPAY_GATEWAY_PLATFORM_APP_ID": tier.app_id,
                    "TRACEPAY_GATEWAY_MQTT_PASSWORD": f"pw-{name}-{tier.secret}",
                    "TRACEPAY_GATEWAY_MQTT_BRIDGE_USERNAME": BRIDGE_USER[0],
                    "TRACEPAY_GATEWAY_MQTT_BRIDGE_PASSWORD": BRIDGE_USER[1],
                    "TRACEPAY_GATEWAY_QUERY_AFTER_S": "1",
                    "TRACEPAY_GATEWAY_QUERY_INTERVAL_S": "1",
                    "TRACEPAY_GATEWAY_SWEEP_INTERVAL_S": "0.5",
                    "TRACEPAY_GATEWAY_CHANNEL_TIMEOUT_S": "1",
                    "TRACEPAY_GATEWAY_SCAN_LIMIT_PER_ADDRESS": "",
                    "TRACEPAY_GATEWAY_NOTIFY_LIMIT_PER_ADDRESS": "",
                    **extra_env}
        self.log = data_dir.parent / f"gateway-{name}.log"
        self.process = ServiceProcess(self.argv, log_path=self.log,
                                      health_url=f"{self.url}/healthz", startup_timeout=90,
                                      env=self.env)
        self.http = http_session()

    def start(self) -> Instance:
        """Started, with its MQTT link subscribed."""
        self.process.start()
        deadline = time.monotonic() + 60
        while self.http.get(f"{self.url}/healthz", timeout=5).json()["mqtt"] != "subscribed":
            assert time.monotonic() < deadline, self.process.log_tail()
            time.sleep(0.1)
        return self

    def kill(self) -> None:
        """kill -9: no shutdown, its database connections and broker session just end."""
        self.process.kill()

    def local(self, url: str) -> str:
        """A URL under the tier's public address, sent to this instance instead."""
        return url.replace(self.public_url, self.url)

    def scan(self, qr_url: str) -> dict[str, Any]:
        response = self.http.get(self.local(qr_url), headers={"Accept": "application/json"},
                                 timeout=30)
        assert response.status_code == 200, response.text
        return response.json()

    def payment(self, payment_id: str) -> dict[str, Any]:
        response = self.http.get(f"{self.url}/v1/payments/{payment_id}", timeout=30)
        assert response.status_code == 200, response.text
        return response.json()

    def wait_status(self, payment_id: str, status: str, timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        while (current := self.payment(payment_id))["status"] != status:
            assert time.monotonic() < deadline, (current, self.process.log_tail())
            time.sleep(0.1)
        return current

    def refund(self, payment_id: str, amount: int, refund_no: str) -> requests.Response:
        return self.http.post(f"{self.url}/v1/payments/{payment_id}/refunds", auth=MANAGER,
                              json={"amount_fen": amount, "reason": "bruised",
                                    "refund_no": refund_no}, timeout=30)

    def notify(self, body: bytes, signature: str) -> int:
        return self.http.post(f"{self.url}/v1/notify/sandbox", data=body, timeout=30,
                              headers={"Content-Type": "application/json",
                                       "X-Signature": signature}).status_code


class GatewayTier:
    """Instances made by :meth:`instance`; the first one's key files are copied into the
    data directory of every later one (as an operator copies them to a new machine)."""

    def __init__(self, root: Path, database_url: str, platform_url: str) -> None:
        self.root = root
        self.database_url = database_url
        self.platform_url = platform_url
        self.public_url = f"http://127.0.0.1:{free_port()}"
        self.app_id = "tier-" + secrets.token_hex(4)
        self.secret = secrets.token_hex(6)
        self.password_file = root / "passwd"
        self.acl_file = root / "acl"
        self.password_file.touch()
        self.acl_file.touch()
        self.broker = Broker(root / "broker", password_file=self.password_file,
                             acl_file=self.acl_file).start()
        self.instances: list[Instance] = []

    def instance(self, name: str, *, copy_keys: bool = True, start: bool = True,
                 **env: str) -> Instance:
        data_dir = self.root / f"data-{name}-{len(self.instances)}"
        data_dir.mkdir(parents=True)
        if copy_keys and self.instances:
            for key_file in (MASTER_KEY_FILE, SIGNING_KEY_FILE):
                shutil.copy2(self.instances[0].data_dir / key_file, data_dir / key_file)
        instance = Instance(self, name, data_dir, env)
        self.instances.append(instance)
        return instance.start() if start else instance

    def close(self) -> None:
        for instance in self.instances:
            instance.process.stop()
        self.broker.stop()

    # -- the database, read as an operator would ----------------------------------------
    def count(self, sql: str, *params: Any) -> int:
        with psycopg.connect(self.database_url) as conn:
            return int(conn.execute(sql, params).fetchone()[0])

    # -- a terminal on the broker ---------------------------------------------------------
    def terminal(self, via: Instance, device_id: str) -> Terminal:
        enrolled = via.http.post(f"{via.url}/v1/devices", auth=MANAGER, timeout=30, json={
            "merchant_id": "stall-7", "merchant_name": "Li's greens",
            "org": "retail_market", "device_id": device_id})
        assert enrolled.status_code == 201, enrolled.text
        claim = via.http.post(
            f"{via.url}/v1/enrolments/{enrolled.json()['enrolment_code']}/claim", timeout=30)
        assert claim.status_code == 200, claim.text
        return Terminal(claim.json())

    def publish_sales(self, terminal: Terminal, sales: list[dict[str, Any]]) -> None:
        """As the terminal, on its own broker login (retrying while the broker re-reads
        the files the gateway just wrote)."""
        client = _device_client(self.broker, terminal)
        try:
            for info in [client.publish(sales_topic(terminal.device_id),
                                        canonical_json.dumps(sale), qos=1) for sale in sales]:
                info.wait_for_publish(15)
        finally:
            client.disconnect()
            client.loop_stop()


def _device_client(broker: Broker, terminal: Terminal) -> mqtt.Client:
    deadline = time.monotonic() + 15
    while True:
        connected: queue.Queue[Any] = queue.Queue()
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=terminal.device_id,
                             protocol=mqtt.MQTTv311)
        client.username_pw_set(terminal.device_id, terminal.claim["mqtt"]["password"])
        client.on_connect = lambda c, u, f, reason, p, box=connected: box.put(reason)
        client.connect(broker.host, broker.port)
        client.loop_start()
        try:
            reason = connected.get(timeout=5)
        except queue.Empty:
            reason = None
        if reason is not None and not reason.is_failure:
            return client
        client.loop_stop()
        assert time.monotonic() < deadline, f"device could not log in: {reason}"
        time.sleep(0.2)


def wait_until(predicate: Any, timeout: float = 60, message: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {message}"
        time.sleep(0.1)
