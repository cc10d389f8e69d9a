"""After a key rotation, the previous key is good only for sales queued before it, and only
for ``rotated_key_grace_s``. A real Mosquitto, the gateway's real MQTT link, sales
published as a terminal publishes them."""

from __future__ import annotations

import time
from pathlib import Path

from test_gateway_mqtt import Listener, _link, _wait
from test_gateway_support import MANAGER, ServedGateway, Terminal, platform  # noqa: F401

from market_protocol.topics import sales_topic


def _gateway(tmp_path: Path, platform_url: str, broker, **overrides) -> ServedGateway:  # noqa: ANN001
    return ServedGateway(tmp_path, platform_url, mqtt_host=broker.host,
                         mqtt_port=broker.port, **overrides)


def _rotate(gw: ServedGateway, old: Terminal) -> Terminal:
    answer = gw.http.post(f"{gw.url}/v1/devices/{old.device_id}/rotate", auth=MANAGER)
    assert answer.status_code == 200, answer.text
    claimed = gw.claim(answer.json()["enrolment_code"])
    assert claimed.status_code == 200, claimed.text
    new = Terminal(claimed.json())
    new.seq = 100
    assert new.key_version == old.key_version + 1
    return new


def _reasons(gw: ServedGateway) -> list[str]:
    return [row["reason"] for row in gw.gateway.db.conn.execute(
        "SELECT reason FROM rejected_messages ORDER BY id")]


def _stored(gw: ServedGateway, sale: dict) -> bool:
    return gw.gateway.db.conn.execute("SELECT 1 FROM sales WHERE sale_id = ?",
                                      (sale["sale_id"],)).fetchone() is not None


def test_sales_queued_before_a_rotation_arrive_within_the_grace(
        tmp_path: Path, platform, mqtt_broker) -> None:  # noqa: F811
    with _gateway(tmp_path, platform.url, mqtt_broker) as gw:
        old = gw.terminal()
        _, queued = old.charge()  # made offline before the rotation
        new = _rotate(gw, old)
        _, made_after = old.charge(issued_at=int(time.time()) + 120)  # the old key, later
        _, current = new.charge()
        publisher = Listener(mqtt_broker)
        link = _link(gw)
        try:
            for sale in (queued, made_after, current):
                publisher.publish(sales_topic(old.device_id), sale)
            _wait(lambda: link.stats["sales_stored"] + link.stats["sales_rejected"] == 3)
        finally:
            link.stop()
            publisher.close()
        assert _stored(gw, queued) and _stored(gw, current)
        assert not _stored(gw, made_after)
        assert _reasons(gw) == ["sale made after its key version 1 was rotated away: "
                                "refused"]


def test_after_the_grace_the_previous_key_is_refused_with_a_reason(
        tmp_path: Path, platform, mqtt_broker) -> None:  # noqa: F811
    with _gateway(tmp_path, platform.url, mqtt_broker, rotated_key_grace_s=0) as gw:
        old = gw.terminal()
        _, queued = old.charge()
        middle = _rotate(gw, old)
        _, two_back = old.charge()
        _, one_back = middle.charge()
        _rotate(gw, middle)
        publisher = Listener(mqtt_broker)
        link = _link(gw)
        try:
            rotated_at = gw.gateway.db.conn.execute(
                "SELECT rotated_at_ms FROM devices WHERE device_id = ?",
                (old.device_id,)).fetchone()[0]
            _wait(lambda: time.time() * 1000 > rotated_at + 1)  # past a grace of 0 s
            for sale in (queued, one_back, two_back):
                publisher.publish(sales_topic(old.device_id), sale)
            _wait(lambda: link.stats["sales_rejected"] == 3)
        finally:
            link.stop()
            publisher.close()
        assert not any(_stored(gw, s) for s in (queued, one_back, two_back))
        reasons = _reasons(gw)
        assert reasons[0].startswith("sale MACed with key version 1, replaced before")
        assert "rotated away more than 0 s ago (rotated_key_grace_s)" in reasons[1]
        assert reasons[2].startswith("sale MACed with key version 1, replaced before")

