"""The MQTT link on a real Mosquitto: sales in, payment results and trades out, the outbox."""

from __future__ import annotations

import queue
import secrets
import time
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import pytest
from test_gateway_support import (  # noqa: F401 - fixtures
    ServedGateway,
    pay_at_checkout,
    platform,
)

from aggregation_gateway.mqtt_link import MqttLink
from market_protocol import check_payment_result, check_trade, verify_record_mac
from market_protocol.signing import load_public_key, verify_record
from market_protocol.topics import TRADES_TOPIC, results_topic, sales_topic


class Listener:
    """A plain MQTT client collecting what arrives on some topics."""

    def __init__(self, broker: Any, *topics: str, persistent: bool = False,
                 user: tuple[str, str] | None = None) -> None:
        self.messages: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                                  client_id=f"test-{secrets.token_hex(4)}",
                                  clean_session=not persistent, protocol=mqtt.MQTTv311)
        if user is not None:
            self.client.username_pw_set(*user)
        self.client.reconnect_delay_set(0.1, 1)
        subscribed = queue.Queue()
        self.client.on_message = lambda c, u, m: self.messages.put(
            (m.topic, orjson.loads(m.payload)))
        self.client.on_subscribe = lambda *args: subscribed.put(True)
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        for topic in topics:
            self.client.subscribe(topic, qos=1)
            subscribed.get(timeout=10)

    def publish(self, topic: str, record: dict[str, Any] | bytes) -> None:
        payload = record if isinstance(record, bytes) else orjson.dumps(record)
        self.client.publish(topic, payload, qos=1).wait_for_publish(10)

    def next(self, topic: str, timeout: float = 15.0, where: Any = None) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"nothing on {topic} within {timeout}s")
            try:
                got_topic, record = self.messages.get(timeout=remaining)
            except queue.Empty:
                continue
            if got_topic == topic and (where is None or where(record)):
                return record

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def gw(tmp_path: Path, platform, mqtt_broker) -> ServedGateway:  # noqa: F811
    with ServedGateway(tmp_path, platform.url, mqtt_host=mqtt_broker.host,
                       mqtt_port=mqtt_broker.port) as served:
        yield served


def _link(gw: ServedGateway) -> MqttLink:
    link = MqttLink(gw.gateway.payments, gw.settings,
                    client_id=f"tracepay-gateway-{secrets.token_hex(4)}")
    link.start()
    assert link.connected.wait(10)
    return link


def _wait(predicate: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def test_sale_payment_result_and_trade(gw: ServedGateway, mqtt_broker) -> None:
    terminal = gw.terminal()
    listener = Listener(mqtt_broker, results_topic(terminal.device_id), TRADES_TOPIC)
    link = _link(gw)
    try:
        url, sale = terminal.charge()
        listener.publish(sales_topic(terminal.device_id), sale)
        listener.publish(sales_topic(terminal.device_id), sale)  # redelivery: no effect
        _wait(lambda: link.stats["sales_stored"] == 1 and link.stats["sales_duplicate"] == 1)
        payment = gw.scan(url).json()
        assert payment["items"][0]["name"] == "cabbage"
        assert pay_at_checkout(payment["checkout_url"]).status_code in (302, 303)
        result = listener.next(results_topic(terminal.device_id),
                               where=lambda r: r["status"] == "paid")
        check_payment_result(result)
        assert verify_record_mac(result, terminal.key)
        assert result["seq"] == sale["seq"]
        trade = check_trade(listener.next(TRADES_TOPIC,
                                          where=lambda r: r["trade_id"] == sale["sale_id"]))
        keys = gw.http.get(f"{gw.url}/v1/keys").json()
        assert verify_record(load_public_key(keys["gateway_public_key_pem"]), trade,
                             "gateway_sig")
        assert trade["sale"] == sale
        assert trade["seller"]["merchant_id"] == "stall-7"
        _wait(lambda: gw.gateway.db.conn.execute(
            "SELECT COUNT(*) FROM outbox WHERE kind = 'trade' AND published_at_ms IS NOT NULL"
        ).fetchone()[0] == 1)
    finally:
        link.stop()
        listener.close()


def test_bad_sales_are_rejected_and_not_stored(gw: ServedGateway, mqtt_broker) -> None:
    terminal = gw.terminal(device_id="dev-a")
    other = gw.terminal(device_id="dev-b")
    listener = Listener(mqtt_broker)
    link = _link(gw)
    try:
        _, forged = terminal.charge(key=b"\x02" * 32)
        listener.publish(sales_topic("dev-a"), forged)
        _, sale = terminal.charge()
        listener.publish(sales_topic(other.device_id), sale)  # on B's topic
        listener.publish(sales_topic("dev-a"), b"{not json")
        _, bad_total = terminal.charge()
        bad_total["total_fen"] += 1
        listener.publish(sales_topic("dev-a"), bad_total)
        _wait(lambda: link.stats["sales_rejected"] == 4)
        assert gw.gateway.db.conn.execute("SELECT COUNT(*) FROM sales").fetchone()[0] == 0
        reasons = [row[0] for row in gw.gateway.db.conn.execute(
            "SELECT reason FROM rejected_messages ORDER BY id")]
        assert "MAC does not verify" in reasons[0]
        assert "topic" in reasons[1]
        assert "not JSON" in reasons[2]
        assert "total_fen" in reasons[3]
    finally:
        link.stop()
        listener.close()


def test_trade_confirmed_while_link_was_down_is_published_on_start(
        gw: ServedGateway, mqtt_broker) -> None:
    """A crash between payment and publication loses nothing: the outbox row survives."""
    terminal = gw.terminal()
    listener = Listener(mqtt_broker, TRADES_TOPIC)
    try:
        url, sale = terminal.charge()
        from aggregation_gateway.sales_intake import accept_sale

        assert accept_sale(gw.gateway.payments, sales_topic(terminal.device_id),
                           orjson.dumps(sale)) == "stored"
        payment = gw.scan(url).json()
        pay_at_checkout(payment["checkout_url"])
        gw.wait_status(payment["payment_id"], "paid")
        row = gw.gateway.db.conn.execute(
            "SELECT published_at_ms FROM outbox WHERE kind = 'trade'").fetchone()
        assert row is not None and row[0] is None  # no link: waiting in the outbox
        link = _link(gw)
        try:
            trade = listener.next(TRADES_TOPIC, where=lambda r: r["trade_id"] == sale["sale_id"])
            assert trade["payment"]["payment_id"] == payment["payment_id"]
            _wait(lambda: gw.gateway.db.conn.execute(
                "SELECT COUNT(*) FROM outbox WHERE published_at_ms IS NULL").fetchone()[0] == 0)
        finally:
            link.stop()
    finally:
        listener.close()


def test_broker_restart_loses_no_trade(tmp_path: Path, platform, fresh_broker) -> None:  # noqa: F811
    """The broker goes away while a payment completes; the link reconnects and the
    outbox delivers the trade."""
    with ServedGateway(tmp_path, platform.url, mqtt_host=fresh_broker.host,
                       mqtt_port=fresh_broker.port) as gw:
        terminal = gw.terminal()
        link = _link(gw)
        try:
            url, sale = terminal.charge()
            listener = Listener(fresh_broker, TRADES_TOPIC, persistent=True)
            listener.publish(sales_topic(terminal.device_id), sale)
            _wait(lambda: link.stats["sales_stored"] == 1)
            payment = gw.scan(url).json()
            fresh_broker.stop()
            pay_at_checkout(payment["checkout_url"])
            gw.wait_status(payment["payment_id"], "paid")
            assert gw.gateway.db.conn.execute(
                "SELECT published_at_ms FROM outbox WHERE kind = 'trade'").fetchone()[0] is None
            fresh_broker.start()
            try:
                trade = listener.next(TRADES_TOPIC, timeout=30,
                                      where=lambda r: r["trade_id"] == sale["sale_id"])
                assert trade["payment"]["payment_id"] == payment["payment_id"]
                _wait(lambda: gw.gateway.db.conn.execute(
                    "SELECT published_at_ms FROM outbox WHERE kind = 'trade'").fetchone()[0]
                    is not None)
            finally:
                listener.close()
        finally:
            link.stop()


def test_sale_that_could_not_be_stored_is_delivered_again(gw: ServedGateway, mqtt_broker,
                                                          monkeypatch) -> None:
    """Storage fails once (a locked or full disk, say): the sale is not acknowledged, the
    link resumes its session, and the broker's redelivery stores it."""
    import aggregation_gateway.mqtt_link as mqtt_link

    real = mqtt_link.accept_sale
    failures = []

    def flaky(service, topic, payload):
        if not failures:
            failures.append(topic)
            raise OSError("disk I/O error")
        return real(service, topic, payload)

    monkeypatch.setattr(mqtt_link, "accept_sale", flaky)
    terminal = gw.terminal()
    listener = Listener(mqtt_broker)
    link = _link(gw)
    try:
        _, sale = terminal.charge()
        listener.publish(sales_topic(terminal.device_id), sale)
        _wait(lambda: link.stats["sales_stored"] == 1, timeout=30)
        assert failures and link.stats["sales_unacknowledged"] == 1
        assert gw.gateway.db.conn.execute("SELECT COUNT(*) FROM sales").fetchone()[0] == 1
    finally:
        link.stop()
        listener.close()
