"""MQTT security on a real Mosquitto: the gateway writes the password and ACL files, and a
device can neither publish as another device nor read another device's results."""

from __future__ import annotations

import queue
import secrets
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from test_gateway_support import MANAGER, ServedGateway, Terminal  # noqa: F401

from aggregation_gateway.mosquitto_auth import mosquitto_hash
from market_protocol.topics import SALES_WILDCARD, results_topic, sales_topic
from tracepay.broker import Broker

GATEWAY_USER = ("gateway-svc", "gw-" + secrets.token_hex(8))


def test_mosquitto_hash_is_pbkdf2_sha512_in_the_7_format() -> None:
    text = mosquitto_hash("secret", salt=b"\x00" * 12)
    assert text.startswith("$7$101$AAAAAAAAAAAAAAAA$")
    assert text != mosquitto_hash("secret")  # random salt by default


class Client:
    def __init__(self, broker: Broker, username: str, password: str) -> None:
        self.inbox: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.acks: queue.Queue = queue.Queue()
        self.connack: queue.Queue = queue.Queue()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                                  client_id=f"t-{secrets.token_hex(4)}", protocol=mqtt.MQTTv311)
        self.client.username_pw_set(username, password)
        self.client.on_connect = lambda c, u, f, reason, p: self.connack.put(reason)
        self.client.on_message = lambda c, u, m: self.inbox.put((m.topic, m.payload))
        self.client.on_subscribe = lambda c, u, mid, reasons, p: self.acks.put(reasons)
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        self.reason = self.connack.get(timeout=10)

    @property
    def refused(self) -> bool:
        return self.reason.is_failure

    def subscribe(self, topic: str) -> list:
        self.client.subscribe(topic, qos=1)
        return self.acks.get(timeout=10)

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(10)

    def until(self, payload: bytes, timeout: float = 10) -> list[tuple[str, bytes]]:
        """Everything received up to and including ``payload`` (a marker)."""
        seen = []
        deadline = time.monotonic() + timeout
        while True:
            topic, body = self.inbox.get(timeout=max(0.01, deadline - time.monotonic()))
            seen.append((topic, body))
            if body == payload:
                return seen

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def secured(tmp_path: Path):
    broker = Broker(tmp_path / "broker", password_file=tmp_path / "passwd",
                    acl_file=tmp_path / "acl")
    broker.start()
    served = ServedGateway(tmp_path, "", mqtt_host=broker.host, mqtt_port=broker.port,
                           mqtt_username=GATEWAY_USER[0], mqtt_password=GATEWAY_USER[1],
                           mosquitto_password_file=str(tmp_path / "passwd"),
                           mosquitto_acl_file=str(tmp_path / "acl"),
                           mosquitto_pid_file=str(broker.data_dir / "broker.pid"))
    with served:
        yield served, broker
    broker.stop()


def _connect_when_reloaded(broker: Broker, username: str, password: str,
                           want_refused: bool, timeout: float = 10) -> Client:
    """The broker re-reads its files on SIGHUP, asynchronously: retry until it has."""
    deadline = time.monotonic() + timeout
    while True:
        client = Client(broker, username, password)
        if client.refused == want_refused or time.monotonic() > deadline:
            return client
        client.close()
        time.sleep(0.1)


def test_device_cannot_publish_or_read_as_another(secured) -> None:
    gw, broker = secured
    a = gw.terminal(device_id="dev-a")
    b = gw.terminal(device_id="dev-b")
    assert (Path(gw.settings["mosquitto_password_file"]).stat().st_mode & 0o777) == 0o600
    gateway = _connect_when_reloaded(broker, *GATEWAY_USER, want_refused=False)
    device_a = _connect_when_reloaded(broker, "dev-a", a.claim["mqtt"]["password"],
                                      want_refused=False)
    device_b = _connect_when_reloaded(broker, "dev-b", b.claim["mqtt"]["password"],
                                      want_refused=False)
    try:
        assert not gateway.refused and not device_a.refused and not device_b.refused
        assert not gateway.subscribe(SALES_WILDCARD)[0].is_failure
        # A publishes on B's sales topic, then on its own: only its own arrives.
        device_a.publish(sales_topic("dev-b"), b"forged-as-b")
        device_a.publish(sales_topic("dev-a"), b"marker-a")
        seen = gateway.until(b"marker-a")
        assert seen == [(sales_topic("dev-a"), b"marker-a")]
        # A cannot read B's results; B can.
        device_a.subscribe(results_topic("dev-b"))
        device_a.subscribe(results_topic("dev-a"))
        device_b.subscribe(results_topic("dev-b"))
        gateway.publish(results_topic("dev-b"), b"for-b")
        gateway.publish(results_topic("dev-a"), b"for-a")
        assert device_a.until(b"for-a") == [(results_topic("dev-a"), b"for-a")]
        assert device_b.until(b"for-b") == [(results_topic("dev-b"), b"for-b")]
        # A device may not publish results (only the gateway may).
        device_b.publish(results_topic("dev-b"), b"self-made")
        gateway.publish(results_topic("dev-b"), b"marker-b")
        assert device_b.until(b"marker-b") == [(results_topic("dev-b"), b"marker-b")]
    finally:
        for client in (gateway, device_a, device_b):
            client.close()


def test_wrong_password_and_revoked_device_are_refused(secured) -> None:
    gw, broker = secured
    a = gw.terminal(device_id="dev-a")
    ok = _connect_when_reloaded(broker, "dev-a", a.claim["mqtt"]["password"], False)
    assert not ok.refused
    ok.close()
    wrong = Client(broker, "dev-a", "not-the-password")
    assert wrong.refused
    wrong.close()
    assert gw.http.post(f"{gw.url}/v1/devices/dev-a/revoke", auth=MANAGER).status_code == 200
    after = _connect_when_reloaded(broker, "dev-a", a.claim["mqtt"]["password"], True)
    assert after.refused
    after.close()
