"""The services' names on the broker belong to the services: on a real Mosquitto with the
files the gateway writes, a device cannot take over the bridge's session (and erase the
trades queued for it), cannot be enrolled under a service's name, and enrolling one more
terminal does not rename its merchant."""

from __future__ import annotations

import queue
import secrets
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from test_gateway_support import MANAGER, ServedGateway

from market_protocol.topics import TRADES_TOPIC
from tracepay.broker import Broker

GATEWAY_USER = ("tracepay-gateway", "gw-" + secrets.token_hex(8))
BRIDGE_USER = ("tracepay-bridge", "br-" + secrets.token_hex(8))


class Session:
    """A paho client with a chosen client id and session kind, reporting what it gets."""

    def __init__(self, broker: Broker, user: tuple[str, str], client_id: str, *,
                 clean: bool) -> None:
        self.inbox: queue.Queue[bytes] = queue.Queue()
        self.events: queue.Queue[tuple[str, object]] = queue.Queue()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                                  clean_session=clean, protocol=mqtt.MQTTv311)
        self.client.username_pw_set(*user)
        self.client.on_connect = lambda c, u, f, reason, p: self.events.put(("connect", reason))
        self.client.on_disconnect = lambda c, u, f, reason, p: self.events.put(
            ("disconnect", reason))
        self.client.on_message = lambda c, u, m: self.inbox.put(m.payload)
        self.client.on_subscribe = lambda c, u, mid, reasons, p: self.events.put(
            ("subscribed", reasons))
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        kind, reason = self.events.get(timeout=10)
        assert kind == "connect" and not reason.is_failure, reason  # type: ignore[union-attr]

    def subscribe(self, topic: str) -> None:
        self.client.subscribe(topic, qos=1)
        assert self.events.get(timeout=10)[0] == "subscribed"

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(10)

    def received_until(self, marker: bytes, timeout: float = 10) -> list[bytes]:
        seen, deadline = [], time.monotonic() + timeout
        while marker not in seen:
            seen.append(self.inbox.get(timeout=max(0.01, deadline - time.monotonic())))
        return seen

    def disconnects(self) -> list[object]:
        out = []
        while not self.events.empty():
            kind, reason = self.events.get_nowait()
            if kind == "disconnect":
                out.append(reason)
        return out

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def secured(tmp_path: Path):
    broker = Broker(tmp_path / "broker", password_file=tmp_path / "passwd",
                    acl_file=tmp_path / "acl")
    broker.start()
    served = ServedGateway(tmp_path, "", mqtt_host=broker.host, mqtt_port=broker.port,
                           mqtt_username=GATEWAY_USER[0], mqtt_password=GATEWAY_USER[1],
                           mqtt_bridge_username=BRIDGE_USER[0],
                           mqtt_bridge_password=BRIDGE_USER[1],
                           mosquitto_password_file=str(tmp_path / "passwd"),
                           mosquitto_acl_file=str(tmp_path / "acl"),
                           mosquitto_pid_file=str(broker.data_dir / "broker.pid"))
    with served:
        yield served, broker
    broker.stop()


def _connect(broker: Broker, user: tuple[str, str], client_id: str, *,
             clean: bool) -> Session:
    """Connect, retrying while the broker re-reads the files the gateway just wrote."""
    deadline = time.monotonic() + 10
    while True:
        try:
            return Session(broker, user, client_id, clean=clean)
        except (AssertionError, queue.Empty):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _device_session(gw: ServedGateway, broker: Broker, device_id: str, client_id: str,
                    clean: bool) -> Session:
    """Connect as a newly enrolled device."""
    terminal = gw.terminal(device_id=device_id)
    return _connect(broker, (device_id, terminal.claim["mqtt"]["password"]), client_id,
                    clean=clean)


def test_a_device_cannot_take_over_the_bridges_session(secured) -> None:
    gw, broker = secured
    gw.terminal(device_id="dev-honest")  # a claim makes the gateway write the broker's files
    bridge = _connect(broker, BRIDGE_USER, "tracepay-bridge", clean=False)
    bridge.subscribe(TRADES_TOPIC)
    bridge.close()  # away for a while: the broker queues trades for its session
    gateway = _connect(broker, GATEWAY_USER, "tracepay-gateway", clean=True)
    for n in range(3):
        gateway.publish(TRADES_TOPIC, f"trade-{n}".encode())
    # A device connects with the bridge's client id and a clean session: on a broker that
    # takes client ids at their word this kicks the bridge and erases its queue.
    intruder = _device_session(gw, broker, "dev-mallory", "tracepay-bridge", clean=True)
    intruder.close()
    bridge = Session(broker, BRIDGE_USER, "tracepay-bridge", clean=False)
    try:
        assert bridge.received_until(b"trade-2") == [b"trade-0", b"trade-1", b"trade-2"]
        # And while the bridge is connected, the same trick does not disconnect it.
        intruder = _device_session(gw, broker, "dev-mallory-2", "tracepay-bridge",
                                   clean=True)
        gateway.publish(TRADES_TOPIC, b"after-the-intruder")
        assert bridge.received_until(b"after-the-intruder") == [b"after-the-intruder"]
        assert bridge.disconnects() == []
        intruder.close()
    finally:
        bridge.close()
        gateway.close()


@pytest.mark.parametrize("device_id", ["tracepay-bridge", "tracepay-gateway", "TRACEPAY-x",
                                       "tracepay"])
def test_a_device_cannot_be_enrolled_under_a_services_name(secured, device_id: str) -> None:
    gw, _broker = secured
    answer = gw.http.post(f"{gw.url}/v1/devices", auth=MANAGER, json={
        "merchant_id": "stall-9", "merchant_name": "Mallory", "org": "retail_market",
        "device_id": device_id})
    assert answer.status_code == 400
    assert answer.json()["error"] == "reserved_name"
    gw.terminal(device_id="dev-honest")  # the broker's files, as a claim writes them
    password_file = Path(gw.settings["mosquitto_password_file"]).read_text()
    users = [line.split(":", 1)[0] for line in password_file.splitlines() if line]
    assert users.count("tracepay-bridge") == 1 and users.count("tracepay-gateway") == 1


def test_a_configured_service_user_is_reserved_too(tmp_path: Path) -> None:
    with ServedGateway(tmp_path, "", mqtt_username="gateway-svc",
                       mqtt_bridge_username="ledger-svc") as gw:
        for name in ("gateway-svc", "Ledger-Svc"):
            answer = gw.http.post(f"{gw.url}/v1/devices", auth=MANAGER, json={
                "merchant_id": "stall-9", "merchant_name": "Mallory",
                "org": "retail_market", "device_id": name})
            assert answer.status_code == 400 and answer.json()["error"] == "reserved_name"


def test_enrolling_a_terminal_does_not_rename_its_merchant(tmp_path: Path) -> None:
    with ServedGateway(tmp_path, "") as gw:
        first = gw.enrol("stall-7")
        assert first["merchant_name"] == "Li's greens"
        second = gw.http.post(f"{gw.url}/v1/devices", auth=MANAGER, json={
            "merchant_id": "stall-7", "merchant_name": "Mallory's stall",
            "org": "retail_market"})
        assert second.status_code == 201
        assert second.json()["merchant_name"] == "Li's greens"
        names = {d["merchant_name"] for d in gw.http.get(f"{gw.url}/v1/devices",
                                                          auth=MANAGER).json()["devices"]}
        assert names == {"Li's greens"}
        # Renaming is the manager's own action.
        renamed = gw.http.put(f"{gw.url}/v1/merchants/stall-7/name", auth=MANAGER,
                              json={"merchant_name": "Li's fresh greens"})
        assert renamed.status_code == 200, renamed.text
        assert renamed.json() == {"merchant_id": "stall-7",
                                  "merchant_name": "Li's fresh greens", "org": "retail_market"}
        names = {d["merchant_name"] for d in gw.http.get(f"{gw.url}/v1/devices",
                                                          auth=MANAGER).json()["devices"]}
        assert names == {"Li's fresh greens"}
        assert gw.http.put(f"{gw.url}/v1/merchants/stall-7/name",
                           json={"merchant_name": "x"}).status_code == 401
        missing = gw.http.put(f"{gw.url}/v1/merchants/nobody/name", auth=MANAGER,
                              json={"merchant_name": "x"})
        assert missing.status_code == 404 and missing.json()["error"] == "unknown_merchant"
        blank = gw.http.put(f"{gw.url}/v1/merchants/stall-7/name", auth=MANAGER,
                            json={"merchant_name": "  "})
        assert blank.status_code == 400
