"""The uplink against a real Mosquitto: PUBACK marks sent, store-and-forward, result MACs."""

from __future__ import annotations

import collections
import json
import signal
import sqlite3
import subprocess
import threading
import time
import uuid

import paho.mqtt.client as mqtt
import pytest

from market_protocol import (
    PAYMENT_RESULT_SCHEMA,
    canonical_json,
    check_sale,
    derive_device_key,
    mac_record,
    verify_record_mac,
)
from market_protocol.topics import results_topic, sales_topic
from pos_terminal import DEFAULT_PRODUCTS, Cart, Terminal
from pos_terminal.testing import TEST_MASTER_KEY, enrol_offline
from service_base.testing import tracepay_command, wait_until


class Subscriber:
    """A gateway stand-in: a persistent-session subscriber to one terminal's sales."""

    def __init__(self, port: int, device_id: str) -> None:
        self.messages: list[dict] = []
        self.lock = threading.Lock()
        self.topic = sales_topic(device_id)
        self.subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                                  client_id=f"sub-{uuid.uuid4().hex[:10]}", clean_session=False,
                                  protocol=mqtt.MQTTv311)
        self.client.reconnect_delay_set(0.1, 1)
        self.client.on_connect = self._connected
        self.client.on_subscribe = lambda *args: self.subscribed.set()
        self.client.on_message = self._message
        self.client.connect_async("127.0.0.1", port)
        self.client.loop_start()
        assert self.subscribed.wait(15), "subscriber did not subscribe"

    def _connected(self, client, userdata, flags, reason, properties):
        client.subscribe(self.topic, qos=1)

    def _message(self, client, userdata, message):
        with self.lock:
            self.messages.append(json.loads(message.payload))

    def sale_keys(self):
        with self.lock:
            return [(m["sale_id"], m["seq"]) for m in self.messages]

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def publish_result(port: int, record: dict) -> None:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    client.connect("127.0.0.1", port)
    client.loop_start()
    info = client.publish(results_topic(record["device_id"]), canonical_json.dumps(record), qos=1)
    info.wait_for_publish(10)
    client.disconnect()
    client.loop_stop()


def cart(weight=500):
    c = Cart()
    c.add(DEFAULT_PRODUCTS[0], weight_g=weight)
    return c


def result_for(sale: dict, status: str, key: bytes, updated_at_ms: int = 1) -> dict:
    record = {"schema": PAYMENT_RESULT_SCHEMA, "payment_id": f"pay-{sale['seq']}",
              "device_id": sale["device_id"], "seq": sale["seq"], "status": status,
              "amount_fen": sale["total_fen"], "currency": "CNY", "channel": "sandbox",
              "channel_txn_id": None, "trace_code": None, "updated_at_ms": updated_at_ms,
              "mac": "0" * 64}
    record["mac"] = mac_record(record, key)
    return record


@pytest.fixture
def device_id():
    return f"T-{uuid.uuid4().hex[:8]}"


def test_puback_marks_sent_and_the_gateway_gets_valid_sales(mqtt_broker, tmp_path, device_id):
    enrol_offline(tmp_path, device_id, mqtt_port=mqtt_broker.port)
    subscriber = Subscriber(mqtt_broker.port, device_id)
    key = derive_device_key(TEST_MASTER_KEY, device_id, 1)
    with Terminal.open(tmp_path) as term:
        charged = [term.charge(cart(100 + i), render_png=False) for i in range(5)]
        assert term.outbox_counts() == {"queued": 5, "sent": 0}
        term.start()
        wait_until(lambda: term.outbox_counts() == {"queued": 0, "sent": 5}, message="5 sent")
        wait_until(lambda: len(subscriber.messages) >= 5, message="5 received")
    subscriber.close()
    assert sorted(subscriber.sale_keys()) == sorted((c.sale_id, c.seq) for c in charged)
    for message in subscriber.messages:
        check_sale(message)
        assert verify_record_mac(message, key)


def test_sale_is_in_the_outbox_when_the_terminal_dies_before_publishing(fresh_broker, tmp_path,
                                                                         device_id):
    enrol_offline(tmp_path, device_id, mqtt_port=fresh_broker.port)
    fresh_broker.stop()  # nothing to publish to: the child can only write its outbox
    child = subprocess.Popen(
        tracepay_command("terminal", "--headless", "--data-dir", str(tmp_path),
                         "--simulate-sales", "3", "--wait-results", "600"),
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    try:
        charged = [json.loads(child.stdout.readline()) for _ in range(3)]
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    assert [event["event"] for event in charged] == ["charged"] * 3
    with sqlite3.connect(tmp_path / "outbox.sqlite") as db:
        rows = db.execute("SELECT sale_id, seq, state FROM sales ORDER BY seq").fetchall()
    assert rows == [(e["sale_id"], e["seq"], "queued") for e in charged]

    fresh_broker.start()
    subscriber = Subscriber(fresh_broker.port, device_id)
    with Terminal.open(tmp_path) as term:
        term.start()
        wait_until(lambda: term.outbox_counts() == {"queued": 0, "sent": 3}, message="drained")
    wait_until(lambda: len(subscriber.messages) >= 3, message="3 received")
    subscriber.close()
    assert sorted(set(subscriber.sale_keys())) == [(e["sale_id"], e["seq"]) for e in charged]


def test_broker_down_sales_queue_then_drain_without_loss(fresh_broker, tmp_path, device_id):
    enrol_offline(tmp_path, device_id, mqtt_port=fresh_broker.port)
    subscriber = Subscriber(fresh_broker.port, device_id)
    with Terminal.open(tmp_path) as term:
        term.start()
        assert term.uplink.wait_connected(15)
        first = [term.charge(cart(), render_png=False) for _ in range(20)]
        wait_until(lambda: term.outbox_counts()["sent"] == 20, message="first 20 sent")

        fresh_broker.stop()
        wait_until(lambda: not term.uplink.connected, message="uplink notices broker down")
        offline = [term.charge(cart(), render_png=False) for _ in range(30)]
        time.sleep(0.3)
        assert term.outbox_counts() == {"queued": 30, "sent": 20}

        fresh_broker.start()
        wait_until(lambda: term.outbox_counts() == {"queued": 0, "sent": 50}, timeout=30,
                   message="drained after restart")
    expected = sorted((c.sale_id, c.seq) for c in first + offline)
    wait_until(lambda: sorted(set(subscriber.sale_keys())) == expected, message="all received")
    subscriber.close()
    counts = collections.Counter(subscriber.sale_keys())
    # QoS 1 may re-deliver; a re-delivery is the same record, so dedup by (sale_id, seq) is exact.
    by_key = {}
    for message in subscriber.messages:
        key = (message["sale_id"], message["seq"])
        assert by_key.setdefault(key, message) == message
    assert set(counts) == set(expected)
    with sqlite3.connect(tmp_path / "outbox.sqlite") as db:
        assert db.execute("SELECT COUNT(*), COUNT(DISTINCT sale_id) FROM sales").fetchone() == (50, 50)


def test_results_are_verified_recorded_and_reported_once(mqtt_broker, tmp_path, device_id):
    enrol_offline(tmp_path, device_id, mqtt_port=mqtt_broker.port)
    key = derive_device_key(TEST_MASTER_KEY, device_id, 1)
    seen = []
    with Terminal.open(tmp_path) as term:
        term.on_result(lambda sale, result: seen.append((sale.sale_id, result["status"])))
        term.start()
        assert term.uplink.wait_connected(15)
        wait_until(lambda: term.uplink.client.is_connected(), message="connected")
        time.sleep(0.2)  # let the results subscription reach the broker
        sale = term.charge(cart(), render_png=False).sale

        forged = result_for(sale, "paid", b"\x01" * 32)
        publish_result(mqtt_broker.port, forged)
        other_device = result_for({**sale, "device_id": "someone-else"}, "paid", key)
        publish_result(mqtt_broker.port, {**other_device, "device_id": device_id})
        publish_result(mqtt_broker.port, result_for(sale, "pending", key, updated_at_ms=5))
        publish_result(mqtt_broker.port, result_for(sale, "paid", key, updated_at_ms=9))
        wait_until(lambda: (sale["sale_id"], "paid") in seen, message="paid result")
        publish_result(mqtt_broker.port, result_for(sale, "paid", key, updated_at_ms=9))
        publish_result(mqtt_broker.port, result_for(sale, "pending", key, updated_at_ms=6))
        wait_until(lambda: term.uplink.rejected_results >= 2, message="forged rejected")
        time.sleep(0.3)
        stored = term.sale(sale["sale_id"])
    assert seen == [(sale["sale_id"], "pending"), (sale["sale_id"], "paid")]
    assert term.uplink.rejected_results == 2
    assert stored.payment_status == "paid" and stored.payment_id == f"pay-{sale['seq']}"
