"""With the broker down, the terminal still learns that the shopper paid: it asks the
gateway over HTTP (a request MACed with its key) and the display turns to paid.

Real Mosquitto (stopped), the gateway on a loopback port with its real MQTT link, the
sandbox platform as its own process, the real terminal and its background threads.
"""

from __future__ import annotations

import time
from pathlib import Path

import orjson
from test_gateway_mqtt import _link, _wait
from test_gateway_support import ServedGateway, pay_at_checkout, platform  # noqa: F401

from market_protocol import canonical_json
from pos_terminal import DEFAULT_PRODUCTS, Cart, Terminal
from pos_terminal.provisioning import save_enrolment
from pos_terminal.status_poll import build_status_request

_until = _wait


def test_the_display_turns_to_paid_while_the_broker_is_down(
        tmp_path: Path, platform, fresh_broker) -> None:  # noqa: F811
    broker = fresh_broker
    with ServedGateway(tmp_path, platform.url, mqtt_host=broker.host,
                       mqtt_port=broker.port, mqtt_public_host=broker.host,
                       mqtt_public_port=broker.port) as gw:
        enrolled = gw.enrol("stall-7")
        save_enrolment(tmp_path / "terminal", gw.claim(enrolled["enrolment_code"]).json())
        link = _link(gw)
        terminal = Terminal.open(tmp_path / "terminal")
        paid_seen: list[int] = []
        terminal.on_result(lambda sale, result: paid_seen.append(sale.seq)
                           if result["status"] == "paid" else None)
        terminal.start()
        try:
            assert terminal.uplink.wait_connected(10)
            broker.stop()
            _until(lambda: not terminal.uplink.connected)
            cart = Cart()
            cart.add(DEFAULT_PRODUCTS[1], weight_g=800)
            charged = terminal.charge(cart, render_png=False)  # offline, queued
            shopper = gw.scan(charged.qr_url).json()
            assert pay_at_checkout(shopper["checkout_url"]).status_code in (302, 303)
            gw.wait_status(shopper["payment_id"], "paid")
            _until(lambda: terminal.sale(charged.sale_id).payment_status == "paid")
            assert paid_seen == [charged.seq]  # the display's callback ran
            assert not terminal.uplink.connected  # all of it with the broker still down
            assert terminal.outbox_counts()["queued"] == 1  # the sale itself waits for MQTT
        finally:
            terminal.stop()
            terminal.close()
            link.stop()


def test_the_status_request_is_checked_like_every_device_request(tmp_path: Path,
                                                                  platform) -> None:  # noqa: F811
    with ServedGateway(tmp_path, platform.url) as gw:
        terminal = gw.terminal()
        url, _ = terminal.charge()
        gw.scan(url)
        now = int(time.time() * 1000)

        def ask(body: dict, device: str | None = None):  # noqa: ANN202
            return gw.http.post(f"{gw.url}/v1/devices/{device or terminal.device_id}"
                                "/payment-status", data=canonical_json.dumps(body),
                                headers={"Content-Type": "application/json"})

        good = build_status_request(device_id=terminal.device_id, key_version=1,
                                    device_key=terminal.key, seqs=[1, 2], requested_at_ms=now)
        answer = ask(good)
        assert answer.status_code == 200, answer.text
        results = answer.json()["results"]
        assert [r["seq"] for r in results] == [1] and results[0]["status"] == "pending"
        forged = build_status_request(device_id=terminal.device_id, key_version=1,
                                      device_key=b"\x01" * 32, seqs=[1], requested_at_ms=now)
        assert ask(forged).json()["error"] == "bad_mac"
        stale = build_status_request(device_id=terminal.device_id, key_version=1,
                                     device_key=terminal.key, seqs=[1],
                                     requested_at_ms=now - 3600_000)
        assert ask(stale).json()["error"] == "stale_request"
        other = gw.terminal("stall-8")
        assert ask(good, other.device_id).json()["error"] == "device_mismatch"
        for bad in ([], list(range(1, 60)), ["1"], [0]):
            body = {**good, "seqs": bad}
            response = ask(body)
            assert response.status_code == 400, (bad, response.text)
        assert ask(orjson.loads(b'{"schema": 1}')).status_code == 400
