"""Offline for days: the outbox never scans, and a broker stopped mid-drain loses nothing."""

from __future__ import annotations

import collections
import json
import re
import sqlite3
import threading
import time
import uuid

import paho.mqtt.client as mqtt
import pytest

from market_protocol import new_nonce
from market_protocol.topics import sales_topic
from pos_terminal import DEFAULT_PRODUCTS, Cart, Terminal
from pos_terminal.outbox import Outbox
from pos_terminal.sale_record import build_sale
from pos_terminal.testing import enrol_offline
from service_base.testing import wait_until

#: Every statement the charge and drain paths run, with example parameters.
HOT_QUERIES = [
    ("SELECT MAX(seq) FROM sales", ()),
    ("SELECT seq, record FROM sales WHERE state = 'queued' AND seq > ? ORDER BY seq LIMIT ?",
     (5, 500)),
    ("UPDATE sales SET state = 'sent', sent_at_ms = ? WHERE seq IN (?, ?) AND state = 'queued'",
     (1, 2, 3)),
    ("SELECT payment_status, payment_updated_at_ms FROM sales WHERE seq = ?", (3,)),
    ("SELECT * FROM sales WHERE sale_id = ?", ("x",)),
    ("SELECT * FROM sales WHERE created_at_ms >= ? AND created_at_ms < ? ORDER BY seq", (1, 2)),
    ("SELECT id, kind, body FROM requests WHERE state = 'queued' ORDER BY id LIMIT ?", (50,)),
]


@pytest.mark.parametrize("sql, params", HOT_QUERIES)
def test_hot_paths_use_indexes_not_scans(tmp_path, sql, params):
    outbox = Outbox(tmp_path / "outbox.sqlite")
    plan = outbox._db.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall()
    details = [row[3] for row in plan]
    # A full table scan reads "SCAN sales"; walking the partial index of queued rows in
    # order ("SCAN requests USING INDEX requests_queued") stops after LIMIT rows.
    assert not [d for d in details if re.fullmatch(r"SCAN \w+", d)], details
    assert not [d for d in details if d.startswith("SCAN") and "_queued" not in d], details


def test_counts_stay_right_through_queue_send_and_requeue(tmp_path):
    enrol_offline(tmp_path, "T-COUNT")
    cart = Cart()
    cart.add(DEFAULT_PRODUCTS[0], weight_g=300)
    with Terminal.open(tmp_path) as term:
        sales = [term.charge(cart, render_png=False) for _ in range(5)]
        assert term.outbox.mark_sent([1, 2, 3, 3, 99]) == 3
        assert term.outbox_counts() == {"queued": 2, "sent": 3}
        term.void(sales[0].sale_id)
        assert term.outbox_counts() == {"queued": 3, "sent": 2}
    with Terminal.open(tmp_path) as term:  # recounted from the file on open
        assert term.outbox_counts() == {"queued": 3, "sent": 2}


class Gateway:
    """Persistent-session subscriber: keeps its subscription across a broker restart."""

    def __init__(self, port: int, device_id: str) -> None:
        self.keys: list[tuple[str, int]] = []
        self.payloads: dict[tuple[str, int], list[bytes]] = collections.defaultdict(list)
        self.lock = threading.Lock()
        ready = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                                  client_id=f"gw-{uuid.uuid4().hex[:8]}", clean_session=False,
                                  protocol=mqtt.MQTTv311)
        self.client.reconnect_delay_set(0.1, 1)
        self.client.on_connect = lambda c, *a: c.subscribe(sales_topic(device_id), qos=1)
        self.client.on_subscribe = lambda *a: ready.set()
        self.client.on_message = self._message
        self.client.connect_async("127.0.0.1", port)
        self.client.loop_start()
        assert ready.wait(15)

    def _message(self, client, userdata, message):
        sale = json.loads(message.payload)
        with self.lock:
            self.keys.append((sale["sale_id"], sale["seq"]))
            self.payloads[(sale["sale_id"], sale["seq"])].append(bytes(message.payload))

    def distinct(self) -> set[tuple[str, int]]:
        with self.lock:
            return set(self.keys)

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def test_broker_stopped_mid_drain_loses_and_duplicates_nothing(fresh_broker, tmp_path):
    device_id = f"T-OFF-{uuid.uuid4().hex[:6]}"
    enrol_offline(tmp_path, device_id, mqtt_port=fresh_broker.port)
    gateway = Gateway(fresh_broker.port, device_id)
    cart = Cart()
    cart.add(DEFAULT_PRODUCTS[1], weight_g=800)
    lines = cart.to_records()
    with Terminal.open(tmp_path) as term:
        # Days offline: a backlog written as the charge path writes it.
        now = time.time_ns() // 1_000_000
        term.outbox.add_many(
            build_sale(device_id=device_id, key_version=1, device_key=term.device_key, seq=seq,
                       sale_id=f"{device_id}.{seq}.x", lines=lines, created_at_ms=now,
                       nonce=new_nonce())
            for seq in range(1, 5001))
        term.start()
        wait_until(lambda: term.outbox_counts()["sent"] >= 100, 30, "drain to begin")
        fresh_broker.stop()  # the real broker goes away in the middle of the drain
        during = [term.charge(cart, render_png=False) for _ in range(50)]
        assert term.outbox_counts()["queued"] > 50
        fresh_broker.start()
        wait_until(lambda: term.outbox_counts() == {"queued": 0, "sent": 5050}, 120,
                   "outbox drained after restart")
        expected = {(f"{device_id}.{seq}.x", seq) for seq in range(1, 5001)}
        expected |= {(c.sale_id, c.seq) for c in during}
        wait_until(lambda: gateway.distinct() == expected, 60, "gateway has every sale")
    gateway.close()
    with sqlite3.connect(tmp_path / "outbox.sqlite") as db:
        assert db.execute("SELECT COUNT(*), COUNT(DISTINCT sale_id), MIN(seq), MAX(seq)"
                          " FROM sales").fetchone() == (5050, 5050, 1, 5050)
    # Re-deliveries are expected (QoS 1 on both hops, and the terminal's re-send window
    # after a lost connection); every copy of a sale is the same record, so dedup by
    # (sale_id, seq) is exact.
    assert len(gateway.keys) >= len(expected)
    for key, payloads in gateway.payloads.items():
        assert len(set(payloads)) == 1, key


def test_broker_killed_mid_drain_of_10000_sales_loses_nothing(fresh_broker, tmp_path):
    """SIGKILL: the broker loses what it acknowledged but had not saved; the terminal
    re-sends the window before the loss, so the gateway still gets every sale."""
    device_id = f"T-KILL-{uuid.uuid4().hex[:6]}"
    enrol_offline(tmp_path, device_id, mqtt_port=fresh_broker.port)
    gateway = Gateway(fresh_broker.port, device_id)
    cart = Cart()
    cart.add(DEFAULT_PRODUCTS[4], weight_g=650)
    lines = cart.to_records()
    with Terminal.open(tmp_path) as term:
        now = time.time_ns() // 1_000_000
        term.outbox.add_many(
            build_sale(device_id=device_id, key_version=1, device_key=term.device_key, seq=seq,
                       sale_id=f"{device_id}.{seq}.k", lines=lines, created_at_ms=now,
                       nonce=new_nonce())
            for seq in range(1, 10_001))
        term.start()
        wait_until(lambda: term.outbox_counts()["sent"] >= 2000, 60, "drain to begin")
        fresh_broker.kill()
        fresh_broker.start()
        wait_until(lambda: term.outbox_counts() == {"queued": 0, "sent": 10_000}, 180,
                   "outbox drained after the crash")
        expected = {(f"{device_id}.{seq}.k", seq) for seq in range(1, 10_001)}
        wait_until(lambda: gateway.distinct() == expected, 60, "gateway has every sale")
    gateway.close()
